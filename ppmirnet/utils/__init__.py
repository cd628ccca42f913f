"""Small helpers: atomic file writing, logging."""

"""Test session set-up."""

# Before any test module imports paddle (see ppmirnet/__init__.py: Paddle 2.6's zlib).
import zlib  # noqa: F401

"""Datasets, transforms, samplers and loaders.

Modules: :mod:`.paired` (input/ + groundtruth/ folders, the lite set),
:mod:`.sidd` (validation blocks, SIDD-Medium patches), :mod:`.dnd` (DND
crops, submission bundler), :mod:`.lite` (the generated lite set),
:mod:`.transforms`, :mod:`.sampler`, :mod:`.builder` (from a config).
Import them directly; this package imports nothing (no Paddle at import).
"""

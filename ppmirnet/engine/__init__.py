"""Training, evaluation and dygraph prediction driven by configs.

Modules: :mod:`.trainer` (the training loop), :mod:`.evaluator` (PSNR/SSIM,
DND submission), :mod:`.dygraph` (a config's model loaded with its weights,
the dygraph runner, the x8 self-ensemble), :mod:`.checkpoint`, :mod:`.lr`,
:mod:`.logger`, :mod:`.env` (device, distributed, seeds). Import them
directly; this package imports nothing, so the tools answer ``--help``
without loading Paddle.
"""

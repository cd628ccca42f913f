"""Training, evaluation and dygraph prediction driven by configs.

Modules: :mod:`.trainer` (the training loop), :mod:`.evaluator` (PSNR/SSIM,
DND submission), :mod:`.predictor` (model building, dygraph runners,
self-ensemble, image files), :mod:`.checkpoint`, :mod:`.lr`, :mod:`.logger`,
:mod:`.env` (device, distributed, seeds), :mod:`.cli_args`. Import them
directly; this package imports nothing, so the tools answer ``--help`` and
report config errors without loading Paddle.
"""

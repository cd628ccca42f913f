"""Deployment runtimes for exported MIRNet models.

``PaddlePredictor`` (Paddle Inference: CPU/oneDNN, GPU, TensorRT) and
``OnnxPredictor`` (onnxruntime) are runners for :mod:`ppmirnet.processing`;
``restore_files`` drives either over image files; ``report`` renders the
AutoLog-style benchmark log. Paddle and onnxruntime are imported only when
a predictor is built.
"""

from .pipeline import StageTimer, plan_outputs, restore_files
from .predictor import PaddlePredictor, PredictorOptions, check_device_support

__all__ = [
    "PaddlePredictor", "PredictorOptions", "check_device_support",
    "StageTimer", "plan_outputs", "restore_files",
]

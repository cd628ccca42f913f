"""Deployment runtimes for exported MIRNet models.

``PaddlePredictor`` (Paddle Inference: CPU/oneDNN, GPU, TensorRT;
:mod:`.paddle_predictor`) and ``OnnxPredictor`` (onnxruntime;
:mod:`.onnx_runtime`) are runners for :mod:`ppmirnet.processing`;
``restore_files`` (:mod:`ppmirnet.files`) drives either over image files; ``report`` renders the
AutoLog-style benchmark log. Paddle and onnxruntime are imported only when
a predictor is built.
"""

from .onnx_runtime import OnnxPredictor
from .paddle_predictor import PaddlePredictor, PredictorOptions, check_device_support
from ..files import StageTimer, plan_outputs, restore_files

__all__ = [
    "PaddlePredictor", "PredictorOptions", "check_device_support", "OnnxPredictor",
    "StageTimer", "plan_outputs", "restore_files",
]

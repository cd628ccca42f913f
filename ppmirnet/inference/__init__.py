"""Deployment runtimes for exported MIRNet models.

``PaddlePredictor`` (Paddle Inference: CPU/oneDNN, GPU, TensorRT;
:mod:`.paddle_predictor`), ``OnnxPredictor`` (onnxruntime;
:mod:`.onnx_runtime`) and ``OpenVinoPredictor`` (:mod:`.openvino_runtime`)
are runners for :mod:`ppmirnet.processing`; :mod:`.engines` chooses among
them and keeps the exports of weights;
``restore_files`` (:mod:`ppmirnet.files`) drives either over image files; ``report`` renders the
AutoLog-style benchmark log. Paddle, onnxruntime and OpenVINO are imported only when
a predictor is built.
"""

from .onnx_runtime import OnnxPredictor
from .paddle_predictor import PaddlePredictor, PredictorOptions, check_device_support
from ..files import StageTimer, plan_outputs, restore_files

__all__ = [
    "PaddlePredictor", "PredictorOptions", "check_device_support", "OnnxPredictor",
    "StageTimer", "plan_outputs", "restore_files",
]

"""Training, evaluation and dygraph prediction engines driven by configs."""

from .checkpoint import load_checkpoint, load_weights, save_checkpoint
from .evaluator import evaluate, evaluate_model
from .lr import WarmupCosine, build_lr_scheduler
from .predictor import DygraphRunner, SelfEnsemble, build_model, load_model
from .trainer import Trainer

__all__ = [
    "Trainer", "evaluate", "evaluate_model", "DygraphRunner", "SelfEnsemble", "build_model",
    "load_model", "load_weights", "load_checkpoint", "save_checkpoint", "WarmupCosine",
    "build_lr_scheduler",
]

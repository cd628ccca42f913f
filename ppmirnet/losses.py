"""Training losses for image restoration."""

import paddle
import paddle.nn as nn

from .registry import build


class CharbonnierLoss(nn.Layer):
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))``, a smooth L1.

    As the official MIRNet training, ``eps`` is 1e-3 and the prediction is
    clamped to [0, 1] first (``clamp=True``): the network output is not
    clamped inside the model.

    Args:
        eps (float): smoothing constant.
        clamp (bool): clamp the prediction to [0, 1] before comparing.
    """

    def __init__(self, eps=1e-3, clamp=True):
        super().__init__()
        self.eps = eps
        self.clamp = clamp

    def forward(self, pred, target):
        if self.clamp:
            pred = paddle.clip(pred, 0.0, 1.0)
        diff = pred.astype("float32") - target.astype("float32")
        return paddle.mean(paddle.sqrt(diff * diff + self.eps * self.eps))


class L1Loss(nn.Layer):
    """Mean absolute error, optionally on the prediction clamped to [0, 1]."""

    def __init__(self, clamp=True):
        super().__init__()
        self.clamp = clamp

    def forward(self, pred, target):
        if self.clamp:
            pred = paddle.clip(pred, 0.0, 1.0)
        return paddle.mean(paddle.abs(pred.astype("float32") - target.astype("float32")))


LOSSES = {"CharbonnierLoss": CharbonnierLoss, "L1Loss": L1Loss}


def build_loss(cfg):
    """Build the loss named by ``cfg['name']`` with the other keys as arguments."""
    return build(LOSSES, cfg, "loss")

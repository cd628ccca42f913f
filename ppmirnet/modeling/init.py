"""Initialisation that matches PyTorch's defaults, so the training recipe holds."""

import math

import paddle
import paddle.nn as nn


def init_like_pytorch(model):
    """Re-initialise every convolution of ``model`` as PyTorch would.

    PyTorch initialises ``Conv2d`` and ``ConvTranspose2d`` weights with
    kaiming-uniform (a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    where fan_in is computed from dimension 1 of the weight (for a transposed
    convolution that is its output channels), and biases with the same bound.
    Paddle's defaults differ. PReLU slopes already start at 0.25 in both.
    Uses Paddle's global RNG, so ``paddle.seed`` makes it reproducible.
    """
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose)):
            shape = layer.weight.shape
            fan_in = shape[1] * math.prod(shape[2:])
            bound = 1.0 / math.sqrt(fan_in)
            layer.weight.set_value(paddle.uniform(shape, min=-bound, max=bound))
            if layer.bias is not None:
                layer.bias.set_value(paddle.uniform(layer.bias.shape, min=-bound, max=bound))

"""Small building blocks shared by the MIRNet modules."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


def sigmoid(x):
    """``F.sigmoid`` that also works when building a legacy (non-PIR) program.

    Paddle 3.x's ``F.sigmoid`` only accepts PIR values in static mode, so
    exporting the ``.pdmodel`` format (``FLAGS_enable_pir_api=0``, needed by
    Paddle Serving) fails on it; there the op is appended directly.
    """
    if paddle.in_dynamic_mode() or paddle.framework.in_pir_mode():
        return F.sigmoid(x)
    from paddle.base.layer_helper import LayerHelper

    helper = LayerHelper("sigmoid")
    out = helper.create_variable_for_type_inference(x.dtype)
    helper.append_op(type="sigmoid", inputs={"X": x}, outputs={"Out": out})
    return out


class Sigmoid(nn.Layer):
    """:func:`sigmoid` as a layer (no parameters)."""

    def forward(self, x):
        return sigmoid(x)


def conv(in_channels, out_channels, kernel_size, bias=False, stride=1):
    """A 'same' convolution (padding ``kernel_size // 2``), as the official ``conv``."""
    return nn.Conv2D(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        bias_attr=None if bias else False,
    )


class PReLU(nn.Layer):
    """PReLU with one scalar slope, as ``torch.nn.PReLU()``.

    The slope is stored as a single parameter (``_weight``, shape ``[1]``) so
    the parameter count and the checkpoint layout match the official model,
    but it is expanded to one slope per channel in ``forward``: oneDNN runs the
    per-channel PReLU kernel about ten times faster than the scalar one. The
    same instance may be applied to tensors of different channel counts (the
    official network shares one PReLU between all its attention units).

    Args:
        init (float): initial slope, 0.25 as in PyTorch.
    """

    def __init__(self, init=0.25):
        super().__init__()
        self._weight = self.create_parameter(
            shape=[1], default_initializer=nn.initializer.Constant(init)
        )

    def forward(self, x):
        return F.prelu(x, self._weight.expand([x.shape[1]]))

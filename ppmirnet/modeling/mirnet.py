"""The MIRNet network."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .init import init_like_pytorch
from .msrb import RRG


class MIRNet(nn.Layer):
    """MIRNet (Zamir et al., ECCV 2020), parameter for parameter the official one.

    ``out = x + conv_out(body(conv_in(x)))`` where ``body`` is ``n_RRG``
    recursive residual groups. The output is not clamped (the training loss
    and the evaluation clamp it to [0, 1]).

    Any input size works: H and W are reflect-padded up to a multiple of
    :attr:`pad_multiple` (8, or ``2**(height-1)`` if larger) and the output is
    cropped back. An input already of such a size is not touched, so the
    output equals the official network's.

    Args:
        in_channels (int): input image channels.
        out_channels (int): output image channels (must equal ``in_channels``
            for the global residual).
        n_feat (int): feature channels at full resolution.
        kernel_size (int): size of the input and output convolutions.
        stride (int): channel multiplier between MSRB levels.
        n_RRG (int): number of recursive residual groups.
        n_MSRB (int): MSRBs per group.
        height (int): resolution levels per MSRB.
        width (int): DAU columns per MSRB.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, in_channels=3, out_channels=3, n_feat=64, kernel_size=3, stride=2,
                 n_RRG=3, n_MSRB=2, height=3, width=2, bias=False):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError("MIRNet adds its input to its output: in_channels must equal out_channels")
        # Constructor arguments, to rebuild the same network (export, checkpoints).
        self.arch = dict(in_channels=in_channels, out_channels=out_channels, n_feat=n_feat,
                         kernel_size=kernel_size, stride=stride, n_RRG=n_RRG, n_MSRB=n_MSRB,
                         height=height, width=width, bias=bias)
        b = None if bias else False
        pad = (kernel_size - 1) // 2
        self.pad_multiple = max(8, 2 ** (height - 1))
        self.conv_in = nn.Conv2D(in_channels, n_feat, kernel_size, padding=pad, bias_attr=b)
        # One PReLU for every DAU of the network, as in the official model.
        dau_act = nn.PReLU()
        self.body = nn.Sequential(
            *[RRG(n_feat, n_MSRB, height, width, stride, dau_act, bias) for _ in range(n_RRG)]
        )
        self.conv_out = nn.Conv2D(n_feat, out_channels, kernel_size, padding=pad, bias_attr=b)
        init_like_pytorch(self)

    def forward(self, x):
        padded, h, w = pad_to_multiple(x, self.pad_multiple)
        out = self.conv_out(self.body(self.conv_in(padded))) + padded
        if padded is x:
            return out
        return out[:, :, :h, :w]


def pad_to_multiple(x, multiple):
    """Reflect-pad the bottom and right of NCHW ``x`` to a multiple of ``multiple``.

    Returns ``(padded, H, W)``; ``padded is x`` when no padding is needed. In
    dygraph the padding is exact. In a static graph (export with dynamic H and
    W) the sizes are tensors, so the input is reflect-padded by
    ``multiple - 1`` and sliced to the rounded-up size: the first rows of a
    reflection do not depend on its length, so the result is the same.
    """
    if paddle.in_dynamic_mode():
        h, w = x.shape[2], x.shape[3]
        ph, pw = -h % multiple, -w % multiple
        if ph == 0 and pw == 0:
            return x, h, w
        if ph >= h or pw >= w:
            raise ValueError(
                f"input of {h}x{w} is too small to reflect-pad to a multiple of {multiple}"
            )
        return F.pad(x, [0, pw, 0, ph], mode="reflect"), h, w
    shape = paddle.shape(x)
    h, w = shape[2], shape[3]
    hp = (h + multiple - 1) // multiple * multiple
    wp = (w + multiple - 1) // multiple * multiple
    m = multiple - 1
    padded = F.pad(x, [0, m, 0, m], mode="reflect")
    return padded[:, :, :hp, :wp], h, w

"""Spatial attention, channel attention and the dual attention unit (DAU)."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .layers import ChannelMax, conv


class SpatialAttention(nn.Layer):
    """Spatial attention: ``x * sigmoid(conv([max_c(x), mean_c(x)]))``.

    The channel-wise max and mean (in that order) are fused by one 2->1
    convolution. Attribute names follow the official checkpoint
    (``spatial.conv``).

    Args:
        kernel_size (int): size of the fusing convolution (5 in MIRNet).
    """

    def __init__(self, kernel_size=5):
        super().__init__()
        self.channel_max = ChannelMax()
        self.spatial = _PoolFusion(kernel_size)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        pooled = paddle.concat([self.channel_max(x), x.mean(axis=1, keepdim=True)], axis=1)
        return x * self.gate(self.spatial(pooled))


class _PoolFusion(nn.Layer):
    """The 2 -> 1 convolution of spatial attention (official ``BasicConv``)."""

    def __init__(self, kernel_size):
        super().__init__()
        self.conv = nn.Conv2D(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias_attr=False)

    def forward(self, x):
        return self.conv(x)


class ChannelAttention(nn.Layer):
    """Squeeze-and-excitation channel attention.

    Global average pool -> 1x1 conv (C -> C // reduction) -> ReLU -> 1x1 conv
    back to C -> sigmoid, used to rescale the channels of the input.

    Args:
        channels (int): number of input channels.
        reduction (int): channel reduction of the bottleneck.
        bias (bool): whether the 1x1 convolutions have a bias.
    """

    def __init__(self, channels, reduction=8, bias=False):
        super().__init__()
        bias_attr = None if bias else False
        self.conv_du = nn.Sequential(
            nn.Conv2D(channels, channels // reduction, 1, bias_attr=bias_attr),
            nn.ReLU(),
            nn.Conv2D(channels // reduction, channels, 1, bias_attr=bias_attr),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.conv_du(F.adaptive_avg_pool2d(x, 1))


class DAU(nn.Layer):
    """Dual attention unit: conv-act-conv, then spatial and channel attention.

    ``res = conv(act(conv(x)))``; the spatially and the channel-attended
    ``res`` are concatenated, fused by a 1x1 conv (2C -> C) and added to
    ``x``.

    Args:
        channels (int): number of channels.
        act (nn.Layer): the activation between the two convolutions. MIRNet
            passes ONE PReLU instance to every DAU of the network, as the
            official code does through a default argument.
        kernel_size (int): size of the body convolutions.
        reduction (int): channel-attention reduction.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, channels, act, kernel_size=3, reduction=8, bias=False):
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, kernel_size, bias=bias),
            act,
            conv(channels, channels, kernel_size, bias=bias),
        )
        self.SA = SpatialAttention()
        self.CA = ChannelAttention(channels, reduction, bias=bias)
        self.conv1x1 = nn.Conv2D(
            channels * 2, channels, 1, bias_attr=None if bias else False
        )

    def forward(self, x):
        res = self.body(x)
        res = self.conv1x1(paddle.concat([self.SA(res), self.CA(res)], axis=1))
        return res + x

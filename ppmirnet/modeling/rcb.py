"""Residual context block (RCB) of MIRNet-v2."""

import paddle.nn as nn

from .context import ContextBlock


class RCB(nn.Layer):
    """``x + LeakyReLU(ContextBlock(conv(LeakyReLU(conv(x)))))``.

    The two 3x3 convolutions may be grouped: MIRNet-v2 uses 1, 2, 4 and 4
    groups in its four residual groups to save parameters.

    Args:
        channels (int): number of channels.
        groups (int): groups of the 3x3 convolutions.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, channels, groups=1, bias=False):
        super().__init__()
        conv_bias = None if bias else False
        self.body = nn.Sequential(
            nn.Conv2D(channels, channels, 3, padding=1, groups=groups, bias_attr=conv_bias),
            nn.LeakyReLU(0.2),
            nn.Conv2D(channels, channels, 3, padding=1, groups=groups, bias_attr=conv_bias),
        )
        self.act = nn.LeakyReLU(0.2)
        self.gcnet = ContextBlock(channels, bias=bias)

    def forward(self, x):
        return self.act(self.gcnet(self.body(x))) + x

"""Multi-scale residual block (MRB) of MIRNet-v2 and its residual group."""

import paddle.nn as nn

from .rcb import RCB
from .resize import Downscale, Upscale
from .skff import SKFFv2


class MRB(nn.Layer):
    """Three streams (full, 1/2 and 1/4 resolution), two passes of RCB + fusion.

    The half and quarter streams are both resized from the block input (with
    ``int(C * chan_factor)`` and ``int(C * chan_factor**2)`` channels). Each
    pass runs one RCB per stream, then fuses bottom-up: the quarter stream,
    upsampled, into the half one (SKFF), and the result, upsampled, into the
    full one. The RCBs and the SKFFs are the same modules in both passes; the
    upsamplers are separate per pass. Output: 1x1 conv of the full stream plus
    the input.

    Args:
        n_feat (int): channels of the full-resolution stream.
        chan_factor (float): channel multiplier between streams.
        groups (int): groups of the RCB convolutions.
        bias (bool): whether the RCB and output convolutions have a bias
            (the resizing and fusion convolutions never have one).
    """

    def __init__(self, n_feat, chan_factor, groups=1, bias=False):
        super().__init__()
        c0, c1, c2 = (int(n_feat * chan_factor**i) for i in range(3))
        self.dau_top = RCB(c0, groups, bias)
        self.dau_mid = RCB(c1, groups, bias)
        self.dau_bot = RCB(c2, groups, bias)
        self.down2 = Downscale(c0, 2, chan_factor)
        self.down4 = nn.Sequential(Downscale(c0, 2, chan_factor), Downscale(c1, 2, chan_factor))
        self.up21_1 = Upscale(c1, 2, chan_factor)
        self.up21_2 = Upscale(c1, 2, chan_factor)
        self.up32_1 = Upscale(c2, 2, chan_factor)
        self.up32_2 = Upscale(c2, 2, chan_factor)
        self.conv_out = nn.Conv2D(c0, c0, 1, bias_attr=None if bias else False)
        self.skff_top = SKFFv2(c0)
        self.skff_mid = SKFFv2(c1)

    def forward(self, x):
        top, mid, bot = x, self.down2(x), self.down4(x)
        for up32, up21 in ((self.up32_1, self.up21_1), (self.up32_2, self.up21_2)):
            top, mid, bot = self.dau_top(top), self.dau_mid(mid), self.dau_bot(bot)
            mid = self.skff_mid([mid, up32(bot)])
            top = self.skff_top([top, up21(mid)])
        return self.conv_out(top) + x


class MRBGroup(nn.Layer):
    """MIRNet-v2's recursive residual group: MRBs and a 3x3 conv, plus the input.

    Args:
        n_feat (int): channels.
        n_MRB (int): number of MRBs.
        chan_factor (float): channel multiplier between MRB streams.
        groups (int): groups of the RCB convolutions.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, n_feat, n_MRB, chan_factor, groups=1, bias=False):
        super().__init__()
        layers = [MRB(n_feat, chan_factor, groups, bias) for _ in range(n_MRB)]
        layers.append(nn.Conv2D(n_feat, n_feat, 3, padding=1, bias_attr=None if bias else False))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x) + x

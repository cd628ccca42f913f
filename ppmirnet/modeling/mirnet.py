"""The MIRNet network."""

import paddle.nn as nn

from .init import init_like_pytorch
from .msrb import RRG
from .padding import pad_tensor_to_multiple


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
        # Constructor arguments, to rebuild the same network (export, checkpoints).
        self.arch = dict(in_channels=in_channels, out_channels=out_channels, n_feat=n_feat,
                         kernel_size=kernel_size, stride=stride, n_RRG=n_RRG, n_MSRB=n_MSRB,
                         height=height, width=width, bias=bias)
        self.check_arch(**self.arch)
        # bias_attr=False leaves the bias out; None lets Paddle create it.
        conv_bias = None if bias else False
        pad = (kernel_size - 1) // 2
        self.pad_multiple = max(8, 2 ** (height - 1))
        self.conv_in = nn.Conv2D(in_channels, n_feat, kernel_size, padding=pad, bias_attr=conv_bias)
        # One PReLU for every DAU of the network, as in the official model.
        dau_act = nn.PReLU()
        self.body = nn.Sequential(
            *[RRG(n_feat, n_MSRB, height, width, stride, dau_act, bias) for _ in range(n_RRG)]
        )
        self.conv_out = nn.Conv2D(n_feat, out_channels, kernel_size, padding=pad, bias_attr=conv_bias)
        init_like_pytorch(self)

    @classmethod
    def check_arch(cls, in_channels=3, out_channels=3, n_feat=64, kernel_size=3, stride=2,
                   n_RRG=3, n_MSRB=2, height=3, width=2, bias=False):
        """Raise ``ValueError`` for arguments that build no working network.

        Config loading calls it, so a bad ``Arch`` value is reported before
        any layer is built.
        """
        sizes = dict(in_channels=in_channels, n_feat=n_feat, kernel_size=kernel_size,
                     n_RRG=n_RRG, n_MSRB=n_MSRB, height=height, width=width)
        for key, value in sizes.items():
            if value < 1:
                raise ValueError(f"{key} is {value}, must be >= 1")
        if in_channels != out_channels:
            raise ValueError(f"out_channels is {out_channels}, must equal in_channels "
                             f"({in_channels}): MIRNet adds its input to its output")
        if n_feat < 8:
            # The channel attention squeezes n_feat // 8 channels: none below 8.
            raise ValueError(f"n_feat is {n_feat}, must be >= 8")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size is {kernel_size}, must be odd (same-size convolutions)")
        if stride != 2:
            raise ValueError(f"stride={stride}: MIRNet's resamplers double the channels per level, "
                             "only stride=2 is supported")

    def forward(self, x):
        padded, (h, w) = pad_tensor_to_multiple(x, self.pad_multiple)
        out = self.conv_out(self.body(self.conv_in(padded))) + padded
        if padded is x:
            return out
        return out[:, :, :h, :w]

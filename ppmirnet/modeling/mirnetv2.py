"""The MIRNet-v2 network."""

import paddle.nn as nn

from .init import init_like_pytorch
from .mrb import MRBGroup
from .padding import pad_tensor_to_multiple

DEFOCUS = "defocus_deblurring"
# Conv groups of the four residual groups, fixed by the official network.
GROUPS = (1, 2, 4, 4)


class MIRNetV2(nn.Layer):
    """MIRNet-v2 (Zamir et al., TPAMI 2022), parameter for parameter the official one.

    ``shallow = conv_in(x)``, ``deep = body(shallow)`` (four residual groups
    of ``n_MRB`` MRBs). For ``task="defocus_deblurring"`` (a dual-pixel pair
    stacked as 6 input channels) ``out = conv_out(deep + shallow)``, otherwise
    ``out = conv_out(deep) + x``. The output is not clamped.

    Any input size works: H and W are reflect-padded up to a multiple of 4
    (two average poolings then two x2 upsamplings) and the output is cropped
    back; an input already of such a size is not touched.

    The official constructor takes ``n_RRG``, ``height``, ``width`` and
    ``scale`` but ignores them (4 groups, 3 streams, 2 passes, no upsampler
    are built whatever they say); here any value other than the official
    default is rejected rather than silently ignored.

    Args:
        in_channels (int): input channels (6 for the dual-pixel model).
        out_channels (int): output channels.
        n_feat (int): feature channels at full resolution.
        chan_factor (float): channel multiplier between MRB streams.
        n_RRG (int): residual groups; must be 4.
        n_MRB (int): MRBs per group.
        height (int): MRB streams; must be 3.
        width (int): MRB passes; must be 2.
        scale (int): must be 1 (super-resolution input is pre-upsampled).
        bias (bool): whether the convolutions have a bias.
        task (str): None, or "defocus_deblurring" for the feature residual.
    """

    pad_multiple = 4

    def __init__(self, in_channels=3, out_channels=3, n_feat=80, chan_factor=1.5, n_RRG=4,
                 n_MRB=2, height=3, width=2, scale=1, bias=False, task=None):
        super().__init__()
        self.arch = dict(in_channels=in_channels, out_channels=out_channels, n_feat=n_feat,
                         chan_factor=chan_factor, n_RRG=n_RRG, n_MRB=n_MRB, height=height,
                         width=width, scale=scale, bias=bias, task=task)
        self.check_arch(**self.arch)
        self.task = task
        # bias_attr=False leaves the bias out; None lets Paddle create it.
        conv_bias = None if bias else False
        self.conv_in = nn.Conv2D(in_channels, n_feat, 3, padding=1, bias_attr=conv_bias)
        self.body = nn.Sequential(*[MRBGroup(n_feat, n_MRB, chan_factor, groups, bias)
                                    for groups in GROUPS])
        self.conv_out = nn.Conv2D(n_feat, out_channels, 3, padding=1, bias_attr=conv_bias)
        init_like_pytorch(self)

    @classmethod
    def check_arch(cls, in_channels=3, out_channels=3, n_feat=80, chan_factor=1.5, n_RRG=4,
                   n_MRB=2, height=3, width=2, scale=1, bias=False, task=None):
        """Raise ``ValueError`` for arguments that build no working network.

        Config loading calls it, so a bad ``Arch`` value is reported before
        any layer is built.
        """
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("n_feat", n_feat), ("n_MRB", n_MRB)):
            if value < 1:
                raise ValueError(f"MIRNetV2 {name}={value}: must be >= 1")
        for name, value, fixed in (("n_RRG", n_RRG, 4), ("height", height, 3),
                                   ("width", width, 2), ("scale", scale, 1)):
            if value != fixed:
                raise ValueError(f"MIRNetV2 {name}={value}: the official network always builds "
                                 f"{name}={fixed} (it ignores the argument); only {fixed} is supported")
        if task not in (None, DEFOCUS):
            raise ValueError(f"MIRNetV2 task={task!r}: expected None or {DEFOCUS!r}")
        if task is None and in_channels != out_channels:
            raise ValueError("MIRNetV2 adds its input to its output unless "
                             f"task={DEFOCUS!r}: in_channels must equal out_channels")
        if chan_factor <= 0:
            raise ValueError(f"MIRNetV2 chan_factor={chan_factor}: must be > 0")
        _check_channels(n_feat, chan_factor)

    def forward(self, x):
        padded, (h, w) = pad_tensor_to_multiple(x, self.pad_multiple)
        shallow = self.conv_in(padded)
        deep = self.body(shallow)
        if self.task == DEFOCUS:
            out = self.conv_out(deep + shallow)
        else:
            out = self.conv_out(deep) + padded
        if padded is x:
            return out
        return out[:, :, :h, :w]


def _check_channels(n_feat, chan_factor):
    """Reject widths for which the official streams do not fit together.

    The streams have ``int(n_feat * chan_factor**i)`` channels, while the
    resizers compute theirs step by step (``int(c * chan_factor)`` down,
    ``int(c // chan_factor)`` up) and the last groups split every stream in 4.
    """
    c = [int(n_feat * chan_factor**i) for i in range(3)]
    problems = []
    if int(c[0] * chan_factor) != c[1] or int(c[1] * chan_factor) != c[2]:
        problems.append("downsampling does not reach the stream widths")
    if int(c[2] // chan_factor) != c[1] or int(c[1] // chan_factor) != c[0]:
        problems.append("upsampling does not return to the stream widths")
    if any(ch % max(GROUPS) for ch in c):
        problems.append(f"not every stream is divisible by {max(GROUPS)} conv groups")
    if problems:
        raise ValueError(f"MIRNetV2 n_feat={n_feat}, chan_factor={chan_factor} gives streams of "
                         f"{c[0]}/{c[1]}/{c[2]} channels: {'; '.join(problems)}")

"""Multi-scale residual block (MSRB) and recursive residual group (RRG)."""

import paddle.nn as nn

from .attention import DAU
from .layers import conv
from .resample import DownSample, UpSample
from .skff import SKFF


class MSRB(nn.Layer):
    """Multi-scale residual block: a ``height`` x ``width`` grid of DAUs.

    Level ``i`` works at 1/2**i of the input resolution with
    ``n_feat * stride**i`` channels. Column 0 is sequential (level ``i`` gets
    the downsampled output of level ``i - 1``). Every later column first fuses,
    for each level, all levels resized to it (one SKFF per level), then runs
    each level's DAU. The output fuses all levels upsampled to full resolution
    with SKFF 0 (the same module as the level-0 fusion), a 3x3 conv, plus the
    input.

    As in the official network, the DAUs of one level are ONE module applied
    in every column, and all DAUs share the activation ``act``. All
    resampling paths are wired here, not looked up by channel count at run
    time, so the static graph is plain.

    Args:
        n_feat (int): channels of level 0.
        height (int): number of resolution levels.
        width (int): number of DAU columns.
        stride (int): channel multiplier between levels (MIRNet uses 2).
        act (nn.Layer): the activation shared by every DAU.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, n_feat, height, width, stride, act, bias=False):
        super().__init__()
        if stride != 2:
            raise ValueError(
                f"stride={stride}: MIRNet's resamplers double the channels per level, "
                "so only stride=2 builds a consistent network (as in the official code)"
            )
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be >= 1, got {height} and {width}")
        self.height, self.width = height, width
        feats = [n_feat * stride**i for i in range(height)]
        self.feats = feats
        # One DAU per level, repeated along the columns: shared weights.
        self.blocks = nn.LayerList(
            [nn.LayerList([DAU(c, act, bias=bias)] * width) for c in feats]
        )
        self.last_up = nn.LayerDict()
        for i in range(1, height):
            self.last_up[str(i)] = UpSample(feats[i], 2**i)
        # Same keys, in the same order, as the official ModuleDicts.
        scales = [2**i for i in range(height - 1, 0, -1)]
        self.down = nn.LayerDict()
        for i, c in enumerate(feats):
            for s in scales[i:]:
                self.down[f"{c}_{s}"] = DownSample(c, s)
        self.up = nn.LayerDict()
        for i, c in enumerate(reversed(feats)):
            for s in scales[i:]:
                self.up[f"{c}_{s}"] = UpSample(c, s)
        self.conv_out = nn.Conv2D(n_feat, n_feat, 3, padding=1, bias_attr=None if bias else False)
        self.selective_kernel = nn.LayerList([SKFF(c, height, bias=bias) for c in feats])

    def _resize(self, x, src, dst):
        """Bring level ``src``'s features to level ``dst``."""
        if src == dst:
            return x
        key = f"{self.feats[src]}_{2 ** abs(dst - src)}"
        return self.up[key](x) if src > dst else self.down[key](x)

    def forward(self, x):
        levels = []
        h = x
        for j in range(self.height):
            if j > 0:
                h = self._resize(h, j - 1, j)
            h = self.blocks[j][0](h)
            levels.append(h)
        for col in range(1, self.width):
            fused = [
                self.selective_kernel[j]([self._resize(levels[k], k, j) for k in range(self.height)])
                for j in range(self.height)
            ]
            levels = [self.blocks[j][col](fused[j]) for j in range(self.height)]
        ups = [levels[0]] + [self.last_up[str(k)](levels[k]) for k in range(1, self.height)]
        out = self.selective_kernel[0](ups)
        return self.conv_out(out) + x


class RRG(nn.Layer):
    """Recursive residual group: ``n_MSRB`` MSRBs and a 3x3 conv, plus the input.

    Args:
        n_feat (int): channels.
        n_MSRB (int): number of MSRBs.
        height, width, stride: MSRB grid, see :class:`MSRB`.
        act (nn.Layer): the activation shared by every DAU.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, n_feat, n_MSRB, height, width, stride, act, bias=False):
        super().__init__()
        layers = [MSRB(n_feat, height, width, stride, act, bias) for _ in range(n_MSRB)]
        layers.append(conv(n_feat, n_feat, 3))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x) + x

"""MIRNet-v2's resizing: average pooling or bilinear x2, with a 1x1 conv changing the channels."""

import paddle.nn as nn


class Down(nn.Layer):
    """Halve the resolution (2x2 average pool), then 1x1 conv C -> int(C * chan_factor).

    Args:
        channels (int): input channels.
        chan_factor (float): channel multiplier.
    """

    def __init__(self, channels, chan_factor):
        super().__init__()
        self.bot = nn.Sequential(
            nn.AvgPool2D(2, ceil_mode=True, exclusive=True),
            nn.Conv2D(channels, int(channels * chan_factor), 1, bias_attr=False),
        )

    def forward(self, x):
        return self.bot(x)


class Up(nn.Layer):
    """1x1 conv C -> int(C // chan_factor), then bilinear x2 (``align_corners=False``).

    Args:
        channels (int): input channels.
        chan_factor (float): channel divisor.
    """

    def __init__(self, channels, chan_factor):
        super().__init__()
        out = int(channels // chan_factor)
        self.bot = nn.Sequential(
            nn.Conv2D(channels, out, 1, bias_attr=False),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        )

    def forward(self, x):
        return self.bot(x)


class Downscale(nn.Layer):
    """``log2(scale)`` chained :class:`Down` steps, channels growing at each."""

    def __init__(self, channels, scale, chan_factor):
        super().__init__()
        steps = []
        for _ in range(_log2(scale)):
            steps.append(Down(channels, chan_factor))
            channels = int(channels * chan_factor)
        self.body = nn.Sequential(*steps)

    def forward(self, x):
        return self.body(x)


class Upscale(nn.Layer):
    """``log2(scale)`` chained :class:`Up` steps, channels shrinking at each."""

    def __init__(self, channels, scale, chan_factor):
        super().__init__()
        steps = []
        for _ in range(_log2(scale)):
            steps.append(Up(channels, chan_factor))
            channels = int(channels // chan_factor)
        self.body = nn.Sequential(*steps)

    def forward(self, x):
        return self.body(x)


def _log2(scale):
    steps = scale.bit_length() - 1
    if scale < 1 or 2**steps != scale:
        raise ValueError(f"scale must be a power of two, got {scale}")
    return steps

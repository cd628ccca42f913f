"""Resampling modules of the MSRB: anti-aliased residual down/up sampling."""

import math

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F


def _reflect_pad1(x):
    """Reflect-pad H and W by one pixel using slices and concats.

    Equal to ``F.pad(x, [1, 1, 1, 1], mode='reflect')``, which Paddle lowers to
    ``pad3d``, an op oneDNN only runs with a slow reference kernel.
    """
    x = paddle.concat([x[:, :, 1:2], x, x[:, :, -2:-1]], axis=2)
    return paddle.concat([x[:, :, :, 1:2], x, x[:, :, :, -2:-1]], axis=3)


class BlurPool(nn.Layer):
    """Anti-aliased stride-2 downsampling (Zhang, ICML 2019), filter size 3.

    Reflect pad by one, then a fixed depthwise [1, 2, 1] x [1, 2, 1] / 16 filter
    with stride 2. The filter is a persistable buffer named ``filt`` of shape
    ``(C, 1, 3, 3)``, as in the official checkpoint.

    Args:
        channels (int): number of channels.
    """

    def __init__(self, channels):
        super().__init__()
        a = np.array([1.0, 2.0, 1.0])
        filt = np.outer(a, a) / 16.0
        filt = np.tile(filt[None, None], (channels, 1, 1, 1)).astype("float32")
        self.register_buffer("filt", paddle.to_tensor(filt), persistable=True)
        self.channels = channels

    def forward(self, x):
        return F.conv2d(_reflect_pad1(x), self.filt, stride=2, groups=self.channels)


class ResidualDownSample(nn.Layer):
    """Halve the resolution and double the channels, with a residual path.

    top: 1x1 -> PReLU -> 3x3 -> PReLU -> BlurPool -> 1x1 (C -> 2C);
    bot: BlurPool -> 1x1 (C -> 2C); output top + bot.

    Args:
        channels (int): input channels.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, channels, bias=False):
        super().__init__()
        conv_bias = None if bias else False
        self.top = nn.Sequential(
            nn.Conv2D(channels, channels, 1, bias_attr=conv_bias),
            nn.PReLU(),
            nn.Conv2D(channels, channels, 3, padding=1, bias_attr=conv_bias),
            nn.PReLU(),
            BlurPool(channels),
            nn.Conv2D(channels, channels * 2, 1, bias_attr=conv_bias),
        )
        self.bot = nn.Sequential(
            BlurPool(channels), nn.Conv2D(channels, channels * 2, 1, bias_attr=conv_bias)
        )

    def forward(self, x):
        return self.top(x) + self.bot(x)


class ResidualUpSample(nn.Layer):
    """Double the resolution and halve the channels, with a residual path.

    top: 1x1 -> PReLU -> 3x3 transposed conv, stride 2 -> PReLU -> 1x1 (C -> C/2);
    bot: bilinear x2 -> 1x1 (C -> C/2); output top + bot.

    The transposed convolution is the official ``padding=1,
    output_padding=1`` one written as the asymmetric padding ``[1, 0, 1, 0]``
    (same weights, same output), because Paddle's dynamic-shape export infers
    a zero size for ``output_padding``.

    Args:
        channels (int): input channels.
        bias (bool): whether the convolutions have a bias.
    """

    def __init__(self, channels, bias=False):
        super().__init__()
        conv_bias = None if bias else False
        self.top = nn.Sequential(
            nn.Conv2D(channels, channels, 1, bias_attr=conv_bias),
            nn.PReLU(),
            nn.Conv2DTranspose(channels, channels, 3, stride=2, padding=[1, 0, 1, 0], bias_attr=conv_bias),
            nn.PReLU(),
            nn.Conv2D(channels, channels // 2, 1, bias_attr=conv_bias),
        )
        self.bot = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2D(channels, channels // 2, 1, bias_attr=conv_bias),
        )

    def forward(self, x):
        return self.top(x) + self.bot(x)


def _steps(scale):
    steps = int(round(math.log2(scale)))
    if 2**steps != scale:
        raise ValueError(f"scale must be a power of two, got {scale}")
    return steps


class DownSample(nn.Layer):
    """Downsample by ``scale`` (a power of two) with chained ResidualDownSample.

    Each x2 stage has its own weights; channels double at every stage.

    Args:
        channels (int): input channels.
        scale (int): total downsampling factor.
    """

    def __init__(self, channels, scale):
        super().__init__()
        stages = []
        for _ in range(_steps(scale)):
            stages.append(ResidualDownSample(channels))
            channels *= 2
        self.body = nn.Sequential(*stages)

    def forward(self, x):
        return self.body(x)


class UpSample(nn.Layer):
    """Upsample by ``scale`` (a power of two) with chained ResidualUpSample.

    Args:
        channels (int): input channels (halved at every x2 stage).
        scale (int): total upsampling factor.
    """

    def __init__(self, channels, scale):
        super().__init__()
        stages = []
        for _ in range(_steps(scale)):
            stages.append(ResidualUpSample(channels))
            channels //= 2
        self.body = nn.Sequential(*stages)

    def forward(self, x):
        return self.body(x)

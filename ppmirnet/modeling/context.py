"""Global context block (GCNet, Cao et al. 2019) as used by MIRNet-v2."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


class ContextBlock(nn.Layer):
    """Add one global context vector to every position.

    A 1x1 conv scores each position; a softmax over the H*W positions turns
    the scores into attention weights, and the attention-weighted sum of the
    features is the context (N, C, 1, 1). It is transformed by
    1x1 conv -> LeakyReLU(0.2) -> 1x1 conv and added to the input.

    Args:
        channels (int): number of channels.
        bias (bool): whether the 1x1 convolutions have a bias.
    """

    def __init__(self, channels, bias=False):
        super().__init__()
        conv_bias = None if bias else False
        self.conv_mask = nn.Conv2D(channels, 1, 1, bias_attr=conv_bias)
        self.channel_add_conv = nn.Sequential(
            nn.Conv2D(channels, channels, 1, bias_attr=conv_bias),
            nn.LeakyReLU(0.2),
            nn.Conv2D(channels, channels, 1, bias_attr=conv_bias),
        )

    def context(self, x):
        # Reshapes keep N and C (0 = copy the dimension) so H and W stay
        # dynamic in an exported graph.
        feats = x.reshape([0, 0, -1])  # N, C, HW
        mask = F.softmax(self.conv_mask(x).reshape([0, 1, -1]), axis=2)  # N, 1, HW
        return paddle.matmul(feats, mask, transpose_y=True).unsqueeze(-1)  # N, C, 1, 1

    def forward(self, x):
        return x + self.channel_add_conv(self.context(x))


"""Selective kernel feature fusion (SKFF)."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


class SKFF(nn.Layer):
    """Fuse ``branches`` same-shaped feature maps with learnt soft selection.

    The branches are summed, globally pooled and squeezed to
    ``d = max(channels // reduction, 4)`` features (1x1 conv + PReLU); one 1x1
    conv per branch expands them back to ``channels`` attention logits, a
    softmax across the branches turns them into weights and the output is the
    weighted sum of the branches.

    The weighting is written with 4-D tensors only: oneDNN has no fast kernel
    for the 5-D broadcast multiply of a literal port.

    Args:
        channels (int): channels of every branch.
        branches (int): number of inputs (the MSRB height).
        reduction (int): channel reduction of the squeeze step.
        bias (bool): whether the 1x1 convolutions have a bias.
        act (nn.Layer): activation of the squeeze step; a new PReLU if None.
    """

    def __init__(self, channels, branches=3, reduction=8, bias=False, act=None):
        super().__init__()
        bias_attr = None if bias else False
        d = max(int(channels / reduction), 4)
        self.branches = branches
        act = nn.PReLU() if act is None else act
        self.conv_du = nn.Sequential(nn.Conv2D(channels, d, 1, bias_attr=bias_attr), act)
        self.fcs = nn.LayerList(
            [nn.Conv2D(d, channels, 1, bias_attr=bias_attr) for _ in range(branches)]
        )

    def forward(self, feats):
        if len(feats) != self.branches:
            raise ValueError(f"SKFF expects {self.branches} inputs, got {len(feats)}")
        summed = feats[0]
        for f in feats[1:]:
            summed = summed + f
        z = self.conv_du(F.adaptive_avg_pool2d(summed, 1))
        logits = paddle.stack([fc(z) for fc in self.fcs], axis=1)  # [B, branches, C, 1, 1]
        weights = paddle.unbind(F.softmax(logits, axis=1), axis=1)
        out = feats[0] * weights[0]
        for f, w in zip(feats[1:], weights[1:]):
            out = out + f * w
        return out


class SKFFv2(SKFF):
    """MIRNet-v2's SKFF: two inputs, LeakyReLU(0.2) in the squeeze step, no bias.

    Args:
        channels (int): channels of both branches.
    """

    def __init__(self, channels):
        super().__init__(channels, branches=2, bias=False, act=nn.LeakyReLU(0.2))

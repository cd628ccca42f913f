"""MIRNet and MIRNet-v2 networks and their building blocks, one module per concept."""

from .attention import DAU, ChannelAttention, SpatialAttention
from .context import ContextBlock
from .mirnet import MIRNet
from .mirnetv2 import MIRNetV2
from .mrb import MRB, MRBGroup
from .msrb import MSRB, RRG
from .resample import BlurPool, DownSample, ResidualDownSample, ResidualUpSample, UpSample
from .rcb import RCB
from .resize import Down, Downscale, Up, Upscale
from .skff import SKFF, SKFFv2

__all__ = [
    "MIRNet", "RRG", "MSRB", "DAU", "SKFF", "SpatialAttention", "ChannelAttention",
    "BlurPool", "DownSample", "UpSample", "ResidualDownSample", "ResidualUpSample",
    "MIRNetV2", "MRBGroup", "MRB", "RCB", "ContextBlock", "SKFFv2", "Down", "Up", "Downscale",
    "Upscale",
]

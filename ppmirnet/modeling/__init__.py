"""MIRNet network and its building blocks, one module per concept."""

from .attention import DAU, ChannelAttention, SpatialAttention
from .mirnet import MIRNet
from .msrb import MSRB, RRG
from .resample import BlurPool, DownSample, ResidualDownSample, ResidualUpSample, UpSample
from .skff import SKFF

__all__ = [
    "MIRNet", "RRG", "MSRB", "DAU", "SKFF", "SpatialAttention", "ChannelAttention",
    "BlurPool", "DownSample", "UpSample", "ResidualDownSample", "ResidualUpSample",
]

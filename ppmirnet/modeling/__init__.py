"""The networks (MIRNet, MIRNet-v2), their blocks (one module per concept) and the registry.

:data:`MODELS` maps the ``Arch.name`` of a config to its network class; the
config's ``Arch`` keys, defaults and types are read from that class's
constructor (see :func:`ppmirnet.config.arch_schema`). Adding a network is
adding its files here and one line to :data:`MODELS`.
"""

from ..compat import import_paddle

import_paddle()  # the blocks below import paddle: first without its ccache warning

from ..errors import ConfigError  # noqa: E402
from ..registry import build
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

MODELS = {
    "MIRNet": MIRNet,
    "MIRNetV2": MIRNetV2,
}


def build_model(arch_cfg):
    """The network of an ``Arch`` config section (``name`` + constructor arguments).

    A value the network cannot build (its ``ValueError``) is a
    :class:`ConfigError` naming ``Arch``.
    """
    try:
        return build(MODELS, arch_cfg, "Arch.name")
    except ValueError as err:
        raise ConfigError(f"Arch: {err}") from None


def arch_section(model):
    """The ``Arch`` section that rebuilds ``model``: its registry name and ``model.arch``.

    Every network keeps its constructor arguments in ``self.arch``; the
    export reads the input's channels from ``arch["in_channels"]``.
    """
    for name, cls in MODELS.items():
        if type(model) is cls:
            return {"name": name, **model.arch}
    raise ValueError(f"{type(model).__name__} is not in ppmirnet.modeling.MODELS")


__all__ = [
    "MODELS", "build_model", "arch_section",
    "MIRNet", "RRG", "MSRB", "DAU", "SKFF", "SpatialAttention", "ChannelAttention",
    "BlurPool", "DownSample", "UpSample", "ResidualDownSample", "ResidualUpSample",
    "MIRNetV2", "MRBGroup", "MRB", "RCB", "ContextBlock", "SKFFv2", "Down", "Up", "Downscale",
    "Upscale",
]

"""ppmirnet: a PaddlePaddle reproduction of MIRNet (Zamir et al., ECCV 2020).

Import what you need from the subpackages (``ppmirnet.modeling``,
``ppmirnet.metrics``, ...); importing this package has no side effects.
"""

__version__ = "0.1.0"

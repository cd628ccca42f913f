"""ppmirnet: MIRNet image restoration in PaddlePaddle (Zamir et al., ECCV 2020).

    from ppmirnet import Restorer
    clean = Restorer("best_model.pdparams")(noisy)

Import what you need from the subpackages (``ppmirnet.modeling``,
``ppmirnet.metrics``, ...). Importing this package has no side effects and
loads neither Paddle nor OpenCV: :class:`~ppmirnet.restorer.Restorer` is
imported on first use.
"""

# Before anything imports paddle: Paddle 2.6's libpaddle.so exports its own
# old zlib, and a process that loads Python's zlib module only after it (numpy
# 2 loads numpy.random late, paddle.jit.save uses zlib) can crash in
# inflateReset2. Loaded first, Python's zlib binds to the system library.
import zlib  # noqa: F401

__version__ = "0.1.0"
__all__ = ["Restorer", "__version__"]


def __getattr__(name):
    if name == "Restorer":
        from .restorer import Restorer

        return Restorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

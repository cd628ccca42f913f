"""ppmirnet: MIRNet image restoration in PaddlePaddle (Zamir et al., ECCV 2020).

    from ppmirnet import Restorer
    clean = Restorer("best_model.pdparams")(noisy)

Import what you need from the subpackages (``ppmirnet.modeling``,
``ppmirnet.metrics``, ...). Importing this package has no side effects and
loads neither Paddle nor OpenCV: :class:`~ppmirnet.restorer.Restorer` is
imported on first use.
"""

__version__ = "0.1.0"
__all__ = ["Restorer", "__version__"]


def __getattr__(name):
    if name == "Restorer":
        from .restorer import Restorer

        return Restorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

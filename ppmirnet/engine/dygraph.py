"""Dygraph inference: a model as a *runner* (float32 NCHW numpy -> NCHW numpy), self-ensemble.

Runners plug into :mod:`ppmirnet.processing` (``restore``, ``run_tiled``), the
same pre/post-processing path as Paddle Inference, ONNX and serving.
"""

import numpy as np
import paddle

from ..errors import UserError
from ..modeling import build_model
from .checkpoint import load_state, read_weights


def load_model(cfg, weights=None, required=True, log=print):
    """Build the model and load ``weights`` (default ``Global.pretrained_model``).

    The network is the one the weights record (see
    :mod:`ppmirnet.engine.checkpoint`) when they carry a record, else the
    config's ``Arch`` section; a config whose ``Arch`` differs from the record
    is said in one ``log`` line. With ``required``, missing weights are a
    :class:`UserError` (evaluating an untrained network is almost always a
    mistake).
    """
    weights = weights if weights is not None else cfg["Global"]["pretrained_model"]
    if weights is None:
        if required:
            raise UserError("no weights given: pass -o Global.pretrained_model=PATH(.pdparams)")
        model = build_model(cfg["Arch"])
    else:
        file, state, arch = read_weights(weights)
        if arch is None:
            arch = cfg["Arch"]
        elif arch != cfg["Arch"]:
            log(f"{weights} records Arch {_describe(arch)}; building that network instead of "
                f"the config's {_describe(cfg['Arch'])}")
        model = build_model(arch)
        load_state(model, state, file)
    model.eval()
    return model


def _describe(arch):
    args = ", ".join(f"{k}={v!r}" for k, v in arch.items() if k != "name")
    return f"{arch.get('name')}({args})"


class DygraphRunner:
    """Call a model on float32 NCHW numpy batches, without gradients.

    Args:
        model (paddle.nn.Layer): the network, put in eval mode.
        amp_level (str or None): ``"O1"``/``"O2"`` to run under auto-cast (GPU).
    """

    def __init__(self, model, amp_level=None):
        self.model = model
        self.amp_level = amp_level
        model.eval()

    @property
    def in_channels(self):
        """3, or 6 for the dual-pixel MIRNet-v2 (left and right views stacked)."""
        return self.model.arch["in_channels"]

    def __call__(self, batch):
        with paddle.no_grad():
            x = paddle.to_tensor(np.ascontiguousarray(batch, dtype=np.float32))
            if self.amp_level:
                with paddle.amp.auto_cast(level=self.amp_level):
                    y = self.model(x)
            else:
                y = self.model(x)
            return y.astype("float32").numpy()


def _forward_mode(batch, mode):
    out = np.rot90(batch, k=mode % 4, axes=(2, 3))
    return out[:, :, ::-1] if mode >= 4 else out


def _inverse_mode(batch, mode):
    if mode >= 4:
        batch = batch[:, :, ::-1]
    return np.rot90(batch, k=-(mode % 4), axes=(2, 3))


class SelfEnsemble:
    """The x8 self-ensemble: average of ``runner`` over the 8 flips/rotations, each undone.

    Wraps any runner; the result has the runner's output shape.
    """

    def __init__(self, runner):
        self.runner = runner
        self.in_channels = getattr(runner, "in_channels", None)

    def __call__(self, batch):
        acc = 0.0
        for mode in range(8):
            x = np.ascontiguousarray(_forward_mode(batch, mode))
            acc = acc + _inverse_mode(self.runner(x), mode).astype(np.float64)
        return (acc / 8.0).astype(np.float32)

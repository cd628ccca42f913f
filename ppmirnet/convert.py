"""Conversion of the official PyTorch MIRNet and MIRNet-v2 checkpoints to Paddle weights.

The Paddle models keep the official module names, so a key converts by one
rule: PReLU slopes are ``weight`` in PyTorch and ``_weight`` in Paddle. The
official MIRNet state dict lists every shared tensor once per place it is
used (aliases); they must hold the same values, which is checked. MIRNet-v2
has no aliases. Which network a checkpoint holds is read off its keys.
"""

import os
import zipfile

import numpy as np

from .errors import ConversionError, UserError

_PRELU_SUFFIX = "._weight"

def official_key(paddle_key):
    """The official (PyTorch) name of a Paddle state-dict key."""
    if paddle_key.endswith(_PRELU_SUFFIX):
        return paddle_key[: -len(_PRELU_SUFFIX)] + ".weight"
    return paddle_key


def load_official_state_dict(path):
    """Read an official checkpoint as ``{official key: float32 ndarray}``.

    Accepts ``.pth``/``.pt`` (``torch.save({'state_dict': ...})``, BasicSR's
    ``{'params': ...}`` or a bare state dict, in the zip or the legacy
    format; read without PyTorch by :func:`ppmirnet.safe_pickle.load_torch`,
    which refuses a file that would run code) and ``.npz`` (official key ->
    array). A ``module.`` prefix (DataParallel) is removed.
    """
    from .safe_pickle import load_torch

    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    if path.endswith(".npz"):
        state = _load_npz(path)
    else:
        ckpt = load_torch(path)
        for wrapper in ("state_dict", "params"):
            if isinstance(ckpt, dict) and isinstance(ckpt.get(wrapper), dict):
                ckpt = ckpt[wrapper]
                break
        if not isinstance(ckpt, dict):
            raise UserError(f"{path} holds no state dict")
        state = {k: v for k, v in ckpt.items() if isinstance(v, np.ndarray)}
    if not state:
        raise UserError(f"{path} holds no tensors")
    return {k[len("module."):] if k.startswith("module.") else k: np.asarray(v) for k, v in state.items()}


def _load_npz(path):
    # Object arrays are never loaded (that would run pickled code), and
    # numpy's advice to allow it is not passed on.
    with open(path, "rb") as f:
        magic = f.read(6)
    if not magic:
        raise UserError(f"cannot read {path} as .npz: the file is empty")
    if magic == b"\x93NUMPY":
        raise UserError(f"cannot read {path} as .npz: it is a single .npy array, not an "
                        f"archive of official key -> array")
    if not magic.startswith(b"PK"):
        raise UserError(f"cannot read {path} as .npz: not a zip archive of arrays")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise UserError(f"cannot read {path} as .npz: it holds pickled Python objects, "
                            f"not plain arrays") from None
        raise UserError(f"cannot read {path} as .npz: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise UserError(f"cannot read {path} as .npz: not a valid archive ({err})") from None


def check_finite(state, path, way_out="pass --allow_nan to convert it anyway",
                 error=ConversionError):
    """Refuse weights holding NaN or infinite values (a diverged training).

    ``state``: name -> numpy array or Paddle tensor. The one check of every
    weights reader (conversion, predict, eval, export, training, ``Restorer``);
    ``way_out`` ends the message, ``error`` is the exception class raised.
    """
    bad = []
    for k, v in state.items():
        v = np.asarray(v)
        if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
            bad.append(k)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise error(f"{path} holds NaN or infinite values in {len(bad)} tensor(s) "
                    f"({shown}); {way_out}")


def infer_arch(state):
    """Read MIRNet's constructor arguments off an official state dict."""
    try:
        w_in = state["conv_in.weight"]
        n_rrg = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
        msrb_ids = {int(k.split(".")[3]) for k in state if k.startswith("body.0.body.") and ".blocks." in k}
        levels = {int(k.split(".")[5]) for k in state if k.startswith("body.0.body.0.blocks.")}
        cols = {int(k.split(".")[6]) for k in state if k.startswith("body.0.body.0.blocks.0.")}
    except (KeyError, ValueError, IndexError):
        raise ConversionError("this does not look like an official MIRNet state dict "
                              "(no conv_in.weight or body.* keys)") from None
    return dict(
        in_channels=int(w_in.shape[1]),
        # The output convolution must mirror the input one; a missing one is
        # reported by name by convert_state_dict.
        out_channels=int(state.get("conv_out.weight", w_in.transpose(1, 0, 2, 3)).shape[0]),
        n_feat=int(w_in.shape[0]), kernel_size=int(w_in.shape[2]),
        n_RRG=n_rrg, n_MSRB=len(msrb_ids), height=len(levels), width=len(cols),
        bias="conv_in.bias" in state,
    )


def is_mirnetv2(state):
    """Whether an official state dict is MIRNet-v2's (its MRBs have ``dau_top`` RCBs)."""
    return any(".dau_top." in k for k in state)


def infer_arch_v2(state, task=None):
    """Read MIRNet-v2's constructor arguments off an official state dict.

    ``task`` defaults to ``"defocus_deblurring"`` when the input and output
    channels differ (the dual-pixel model: 6 in, 3 out), the only case the
    official network can run with unequal channels.
    """
    from .modeling.mirnetv2 import DEFOCUS

    try:
        w_in = state["conv_in.weight"]
        w_out = state["conv_out.weight"]
        groups = {int(k.split(".")[1]) for k in state if k.startswith("body.")}
        mrbs = {int(k.split(".")[3]) for k in state if k.startswith("body.0.body.") and ".dau_top." in k}
        mid = state["body.0.body.0.dau_mid.body.0.weight"]
    except (KeyError, ValueError, IndexError):
        raise ConversionError("this does not look like an official MIRNet-v2 state dict "
                              "(no conv_in/conv_out weights or body.*.dau_* keys)") from None
    n_feat = int(w_in.shape[0])
    in_channels, out_channels = int(w_in.shape[1]), int(w_out.shape[0])
    if task is None and in_channels != out_channels:
        task = DEFOCUS
    if len(groups) != 4:
        raise ConversionError(f"MIRNet-v2 has 4 residual groups; this checkpoint has {len(groups)}")
    return dict(in_channels=in_channels, out_channels=out_channels, n_feat=n_feat,
                chan_factor=int(mid.shape[0]) / n_feat, n_MRB=len(mrbs),
                bias="conv_in.bias" in state, task=task)


def infer_network(state, task=None):
    """``(Arch name, constructor arguments)`` of an official state dict, from its keys.

    ``task`` only applies to MIRNet-v2 (see :func:`infer_arch_v2`).
    """
    if is_mirnetv2(state):
        return "MIRNetV2", infer_arch_v2(state, task)
    if task is not None:
        raise ConversionError(f"task={task!r} applies to MIRNet-v2, but this checkpoint is MIRNet")
    return "MIRNet", infer_arch(state)


def convert_state_dict(official, model):
    """Map an official state dict onto ``model``'s Paddle state dict.

    Returns ``{paddle key: ndarray}`` covering every key of the model. Missing
    keys, unexpected keys, shape mismatches and aliases with different values
    raise :class:`ConversionError` naming them; nothing is changed.
    """
    target = model.state_dict()
    problems = []
    converted = {}
    used = set()
    by_tensor = {}
    for key, tensor in target.items():
        src = official_key(key)
        if src not in official:
            problems.append(f"missing in checkpoint: {src}")
            continue
        used.add(src)
        value = np.asarray(official[src], dtype="float32")
        if list(value.shape) != list(tensor.shape):
            problems.append(f"shape mismatch for {src}: checkpoint {tuple(value.shape)}, "
                            f"model {tuple(tensor.shape)}")
            continue
        first = by_tensor.setdefault(id(tensor), (src, value))
        if first[0] != src and not np.array_equal(first[1], value, equal_nan=True):
            problems.append(f"{src} should share its value with {first[0]} "
                            "(one module in the official network) but differs")
        converted[key] = value
    for key in sorted(set(official) - used):
        problems.append(f"unexpected in checkpoint: {key}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ConversionError(f"checkpoint does not match the model:\n  {shown}{more}")
    return converted


def load_official_weights(model, official):
    """Load an official state dict (``{key: ndarray}``) into ``model`` in place."""
    import paddle

    converted = convert_state_dict(official, model)
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in converted.items()})
    return model


def build_official(name, arch):
    """The Paddle network ``name`` with ``arch``; a configuration it rejects is a ConversionError."""
    from .modeling import MIRNet, MIRNetV2

    try:
        return {"MIRNet": MIRNet, "MIRNetV2": MIRNetV2}[name](**arch)
    except ValueError as err:
        raise ConversionError(f"the checkpoint's configuration cannot be built: {err}") from None


def convert_checkpoint(src, dst, task=None, allow_nan=False):
    """Convert the official checkpoint ``src`` to a Paddle ``.pdparams`` at ``dst``.

    Returns ``(network name, architecture)``. ``dst`` is written atomically
    and only after the whole checkpoint matched; it records the architecture
    (the ``Arch`` section, see :mod:`ppmirnet.engine.checkpoint`), so tools
    given only these weights build the right network. A checkpoint with NaN
    or infinite values is refused unless ``allow_nan``.
    """
    import paddle

    from .engine.checkpoint import save_weights

    official = load_official_state_dict(src)
    if not allow_nan:
        check_finite(official, src)
    name, arch = infer_network(official, task)
    model = build_official(name, arch)
    converted = convert_state_dict(official, model)
    save_weights(dst, {k: paddle.to_tensor(v) for k, v in converted.items()},
                 {"name": name, **model.arch})
    return name, arch

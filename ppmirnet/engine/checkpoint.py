"""Checkpoints: ``<name>.pdparams`` + ``.pdopt`` + ``.pdstates``, saved atomically as a set.

Every file is read through :func:`ppmirnet.safe_pickle.load_paddle`: one that
would call anything but what ``paddle.save`` writes is refused unread.

``.pdparams`` is the model's state dict (loadable on its own), ``.pdopt``
the optimizer's (with its learning-rate schedule) and ``.pdstates`` the
training position: epoch, iteration, best metric, schedule, RNG state.

Weights written by this project record the network they belong to: the
``.pdparams`` dict carries :data:`ARCH_KEY` holding the ``Arch`` config section
(``{"name": "MIRNet", <constructor arguments>}``), so a file alone says how to
build its model (:func:`read_arch`). Files without the record (older
checkpoints, other tools) load as before.

Each file is written to a staging name first. Only when the three are
complete is a marker written, then the files are renamed over the old set and
the marker removed. A kill at any point leaves either the old set (staging
files without marker: discarded) or the new one (marker present: the renames
are finished by :func:`recover`), never a mix or a truncated file.
"""

import os

import paddle

from ..convert import check_finite as _check_finite
from ..errors import UserError
from ..safe_pickle import load_paddle
from ..utils.io import atomic_paddle_save, atomic_path, ensure_dir

EXTENSIONS = (".pdparams", ".pdopt", ".pdstates")
# The key of the architecture record inside a .pdparams dict.
ARCH_KEY = "__arch__"


def with_arch(state_dict, arch):
    """``state_dict`` plus the architecture record ``arch`` (an ``Arch`` section), for saving."""
    if arch is None:
        return dict(state_dict)
    return dict(state_dict, **{ARCH_KEY: dict(arch)})


def split_arch(state):
    """``(state dict without the record, record or None)`` of a loaded ``.pdparams`` dict."""
    if not isinstance(state, dict) or ARCH_KEY not in state:
        return state, None
    state = dict(state)
    arch = state.pop(ARCH_KEY)
    return state, dict(arch) if isinstance(arch, dict) else None


def save_weights(path, state_dict, arch):
    """Write ``state_dict`` with its architecture record to ``path`` atomically."""
    atomic_paddle_save(with_arch(state_dict, arch), path)


def weights_file(path):
    """The file that ``path`` (a ``.pdparams``, with or without the extension) names.

    A missing file, or one of another kind (a folder, an optimizer state...),
    is a :class:`UserError` that says what it is.
    """
    file = path if path.endswith(".pdparams") else path + ".pdparams"
    if not os.path.isfile(file) and os.path.isfile(path):
        if _known_other_kind(path):
            raise UserError(wrong_kind(path))
        # Another extension is read as given: a .pth given by mistake is then named by what it holds.
        file = path
    if not os.path.isfile(file):
        if os.path.exists(path):
            raise UserError(wrong_kind(path))
        raise UserError(f"pretrained model not found: {file}")
    return file


def read_weights(path):
    """Read a ``.pdparams`` file (path with or without the extension).

    Returns ``(file, state dict, architecture record or None)``; a missing or
    damaged file is a :class:`UserError` naming it.
    """
    file = weights_file(path)
    try:
        state = load_paddle(file)
    except UserError:
        raise
    except Exception as err:  # paddle raises many types for a damaged file
        raise UserError(f"cannot read weights {file}: {err}") from None
    if not isinstance(state, dict):
        raise UserError(f"{file} holds no state dict")
    state, arch = split_arch(state)
    return file, state, arch


# What files of other kinds are, for the message naming one given as weights.
_KINDS = {
    ".pdopt": "the optimizer state of a checkpoint",
    ".pdstates": "the training position of a checkpoint",
    ".pdiparams": "the parameters of an exported inference model (use it with ppmirnet infer)",
    ".pdmodel": "an exported inference program (use its folder with ppmirnet infer)",
    ".json": "not a weights file (an exported program or a result?)",
    ".onnx": "an ONNX model (use it with deploy/onnx/infer.py)",
    ".pth": "a PyTorch checkpoint (convert it first: ppmirnet convert --src FILE --dst W.pdparams)",
    ".pt": "a PyTorch checkpoint (convert it first: ppmirnet convert --src FILE --dst W.pdparams)",
    ".yaml": "a config, not weights",
    ".yml": "a config, not weights",
}


def _known_other_kind(path):
    """Whether ``path``'s extension says it is no weights file (a PyTorch checkpoint is read to tell)."""
    from ..processing import IMAGE_EXTENSIONS

    ext = os.path.splitext(path)[1].lower()
    return (ext in _KINDS and ext not in (".pth", ".pt")) or ext in IMAGE_EXTENSIONS


def wrong_kind(path):
    """The message for ``path``, which exists but is not a ``.pdparams`` weights file."""
    from ..processing import IMAGE_EXTENSIONS

    if os.path.isdir(path):
        found = [n for n in ("best_model.pdparams", "latest.pdparams")
                 if os.path.isfile(os.path.join(path, n))]
        if found:
            return (f"{path} is a training output folder, not a weights file: give one of its "
                    f"checkpoints, e.g. {os.path.join(path, found[0])}")
        return f"{path} is a folder, not a weights file (.pdparams)"
    stem, ext = os.path.splitext(path)
    ext = ext.lower()
    if ext in (".pdopt", ".pdstates") and os.path.isfile(stem + ".pdparams"):
        return f"{path} is {_KINDS[ext]}, not its weights: give {stem}.pdparams"
    if ext in _KINDS:
        return f"{path} is {_KINDS[ext]}, not a weights file (.pdparams)"
    if ext in IMAGE_EXTENSIONS:
        return f"{path} is an image, not a weights file (.pdparams)"
    return f"{path} is not a weights file (.pdparams)"


def check_finite(state, name):
    """Refuse a state dict with NaN or infinite values; ``name`` names the file in the message."""
    _check_finite(state, name, way_out="these weights come from a diverged training and would "
                  "restore nothing; use an earlier checkpoint", error=UserError)


def read_arch(path):
    """The architecture record of a ``.pdparams`` file, or None if it has none."""
    return read_weights(path)[2]


def _staging(prefix, ext):
    folder, name = os.path.split(prefix)
    return os.path.join(folder, f".{name}.staging{ext}")


def _marker(prefix):
    folder, name = os.path.split(prefix)
    return os.path.join(folder, f".{name}.staging.complete")


def recover(prefix):
    """Finish or discard an interrupted save of the set ``prefix`` (see the module doc)."""
    marker = _marker(prefix)
    if os.path.exists(marker):
        for ext in EXTENSIONS:
            if os.path.exists(_staging(prefix, ext)):
                os.replace(_staging(prefix, ext), prefix + ext)
        os.remove(marker)
    else:
        for ext in EXTENSIONS:
            if os.path.exists(_staging(prefix, ext)):
                os.remove(_staging(prefix, ext))


def save_checkpoint(prefix, model_state, optimizer_state, states, arch=None):
    """Save the set ``prefix.{pdparams,pdopt,pdstates}`` atomically.

    ``arch`` (the ``Arch`` section) is recorded in the ``.pdparams``, so the
    weights alone rebuild their network.
    """
    ensure_dir(os.path.dirname(os.path.abspath(prefix)))
    recover(prefix)
    model_state = with_arch(model_state, arch)
    try:
        for ext, obj in zip(EXTENSIONS, (model_state, optimizer_state, states)):
            with atomic_path(_staging(prefix, ext), shown=prefix + ext) as tmp:
                paddle.save(obj, tmp)
    except BaseException:
        recover(prefix)  # no marker yet: drops the staged files, the old set stays
        raise
    with atomic_path(_marker(prefix)) as tmp:
        open(tmp, "w").close()
    recover(prefix)


def checkpoint_prefix(path):
    """``path`` without a checkpoint extension (``a/latest.pdparams`` -> ``a/latest``)."""
    for ext in EXTENSIONS:
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def load_checkpoint(prefix):
    """``(model_state, optimizer_state, states)`` of the set ``prefix``; errors name missing files."""
    prefix = checkpoint_prefix(prefix)
    missing = [prefix + ext for ext in EXTENSIONS if not os.path.isfile(prefix + ext)]
    if missing:
        raise UserError(f"cannot resume: checkpoint file not found: {missing[0]} (a checkpoint "
                        f"is {prefix}.pdparams + .pdopt + .pdstates)")
    try:
        model_state = load_paddle(prefix + ".pdparams")
        opt_state = load_paddle(prefix + ".pdopt")
        states = load_paddle(prefix + ".pdstates", return_numpy=True)
    except UserError:
        raise
    except Exception as err:  # paddle raises many types for a damaged file
        raise UserError(f"cannot read checkpoint {prefix}: {err}") from None
    model_state, _ = split_arch(model_state)
    return model_state, opt_state, states


def find_resume(resume, output_dir):
    """The checkpoint prefix to resume from, or None to start afresh.

    ``resume`` is None (start afresh), ``"auto"`` (``output_dir/latest`` if it
    exists) or a checkpoint path with or without extension. Call
    :func:`recover` on the prefix first (from one process only).
    """
    if resume is None:
        return None
    if resume == "auto":
        prefix = os.path.join(output_dir, "latest")
        return prefix if os.path.isfile(prefix + ".pdstates") else None
    return checkpoint_prefix(resume)


def load_weights(model, path):
    """Load a ``.pdparams`` file (path with or without the extension) into ``model``.

    Every parameter of the model must be in the file with the same shape;
    otherwise a :class:`UserError` names the file and the first mismatch.
    """
    if path is None:
        return
    file, state, _ = read_weights(path)
    load_state(model, state, file)


def load_state(model, state, name):
    """Check ``state`` against ``model`` (see :func:`check_state_dict`), and that it is finite, and load it."""
    check_state_dict(model, state, name)
    check_finite(state, name)
    model.set_state_dict(state)


def check_state_dict(model, state, name):
    """Raise :class:`UserError` unless ``state`` fits ``model`` key for key and shape for shape."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise UserError(f"{name} does not fit this model ({'; '.join(detail)} keys); check the "
                        f"Arch section matches the weights")
    for k, v in own.items():
        if list(state[k].shape) != list(v.shape):
            raise UserError(f"{name}: {k} has shape {list(state[k].shape)}, the model expects "
                            f"{list(v.shape)}; check the Arch section matches the weights")


def parameter_names(model):
    """``{structured name: parameter name}``: the optimizer state is keyed by the latter.

    Paddle numbers parameter names per process (``conv2d_12.w_0``), so a
    model built in another process or after other models gets other names;
    saving this map lets :func:`rename_optimizer_state` match them again.
    """
    return {k: p.name for k, p in model.named_parameters()}


def match_precision(model, model_state, opt_state, master_weights):
    """Fit a checkpoint saved under any AMP level to a run with or without master weights.

    Under AMP O2 the optimizer keeps float32 master copies of the float16
    weights (``opt_state["master_weights"]``, keyed by parameter name, as
    :func:`rename_optimizer_state` leaves it) and ``.pdparams`` holds the
    float16 weights cast to float32. The master copies are the exact
    weights: a run without them (float32, O1) takes them as its weights; a
    run with them (O2) resuming a float32 checkpoint gets its weights as
    master copies, so nothing is lost to the float16 cast. Returns new dicts.
    """
    masters = opt_state.get("master_weights") or {}
    names = parameter_names(model)
    model_state, opt_state = dict(model_state), dict(opt_state)
    if masters and not master_weights:
        # Every key of a shared tensor (aliases included), not only the first.
        for key, tensor in model.state_dict().items():
            name = getattr(tensor, "name", None)
            if name in masters:
                model_state[key] = masters[name]
        del opt_state["master_weights"]
    elif master_weights and not masters:
        opt_state["master_weights"] = {
            name: paddle.to_tensor(model_state[key]).astype("float32") for key, name in names.items()}
    return model_state, opt_state


def rename_optimizer_state(opt_state, saved_names, model):
    """Re-key an optimizer state saved with ``saved_names`` for the parameters of ``model``."""
    current = parameter_names(model)
    mapping = {saved_names[k]: current[k] for k in current if k in saved_names}
    if all(old == new for old, new in mapping.items()):
        return opt_state
    olds = sorted(mapping, key=len, reverse=True)

    def rename(key):
        for old in olds:
            if key == old or key.startswith(old + "_"):
                return mapping[old] + key[len(old):]
        return key

    out = {}
    for key, value in opt_state.items():
        if key == "master_weights" and isinstance(value, dict):
            out[key] = {rename(k): v for k, v in value.items()}
        elif key == "LR_Scheduler":
            out[key] = value
        else:
            out[rename(key)] = value
    return out

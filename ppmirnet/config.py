"""YAML training configs: a typed schema, ``-o Section.key=value`` overrides, saving.

A config has the PaddleClas sections ``Global``, ``Arch``, ``Loss``,
``Optimizer``, ``LRScheduler``, ``DataLoader`` and ``Metric``. Every key is
declared in :data:`SCHEMA` with its type and default, so an unknown key, a
value of the wrong type or a missing required value is a :class:`ConfigError`
naming the key and the file. Some nodes (the dataset, the loss, ...) hold one
of several kinds selected by their ``name``; each kind has its own keys.

Override values are parsed with ``yaml.safe_load`` (never ``eval``):
``-o Global.epochs=2``, ``-o Global.pretrained_model=null``,
``-o DataLoader.Eval.dataset='{name: PairedImageFolder, root: data/x}'``.
A config may start with ``_base_: other.yaml`` (relative to itself) and
change only some keys of it.

The override syntax (:func:`split_override`) is shared with the Paddle
Serving config, so importing this module must keep working under Python 3.8
without Paddle; the ``Arch`` schema imports the networks only when read.
"""

import copy
import inspect
import math
import os
import re
import typing

import yaml

from .errors import ConfigError, UserError
from .data.lite import SR_SCALES as LITE_SR_SCALES, TASKS as LITE_TASKS
from .metrics import COLORS, METRIC_NAMES

_REQUIRED = object()


class Field:
    """A leaf of the schema: accepted types, default, allowed values.

    Args:
        types (type or tuple): accepted Python types after YAML parsing. ``float``
            also accepts ints and numeric strings such as ``1e-3`` (which YAML 1.1
            reads as a string); ``int`` never accepts booleans.
        default: value when the key is absent; omit to make the key required.
        nullable (bool): whether ``null`` is allowed.
        choices (tuple): the allowed values, if restricted.
        minimum (number): the smallest allowed value of a number.
        below (number): a number must be smaller than this (e.g. Adam's betas, below 1).
        A float (and every float of a list) must be finite: NaN and infinity are refused.
        item (type): for ``list`` fields, the type of every item.
        pattern (str): for strings, a regular expression the whole value must match;
            ``hint`` says what it means in the error message.
    """

    def __init__(self, types, default=_REQUIRED, nullable=False, choices=None, minimum=None,
                 item=None, pattern=None, hint=None, below=None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.default = default
        self.nullable = nullable
        self.choices = choices
        self.minimum = minimum
        self.item = item
        self.pattern = pattern
        self.hint = hint
        self.below = below

    def check(self, value, key, where):
        """Return ``value`` converted to the field's type, or raise ConfigError."""
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{where}: {key} must not be null")
        value = self._convert(value, key, where)
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join("null" if c is None else str(c) for c in self.choices)
            raise ConfigError(f"{where}: {key} is {value!r}, expected one of: {allowed}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ConfigError(f"{where}: {key} is {value!r}, expected {self.hint}")
        for i, v in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(v, float) and not math.isfinite(v):
                shown = f"{key}[{i}]" if isinstance(value, list) else key
                raise ConfigError(f"{where}: {shown} is {v!r}, expected a finite number")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{where}: {key} is {value!r}, must be >= {self.minimum}")
        if self.below is not None and value >= self.below:
            raise ConfigError(f"{where}: {key} is {value!r}, must be < {self.below}")
        return value

    def _convert(self, value, key, where):
        for t in self.types:
            if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if t is float and isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    continue
            if t is int and isinstance(value, bool):
                continue
            if t is list and isinstance(value, list):
                if self.item is not None:
                    for i, v in enumerate(value):
                        if not isinstance(v, self.item) or isinstance(v, bool) and self.item is not bool:
                            raise ConfigError(
                                f"{where}: {key}[{i}] is {v!r}, expected {self.item.__name__}"
                            )
                return list(value)
            if isinstance(value, t):
                return value
        names = " or ".join(t.__name__ for t in self.types)
        raise ConfigError(f"{where}: {key} is {value!r} ({type(value).__name__}), expected {names}")


class SizeField(Field):
    """A memory size (``3G``, ``512M``, ``1.5GB`` or bytes), kept as given; null: the default."""

    def __init__(self):
        super().__init__((str, int), None, nullable=True)

    def check(self, value, key, where):
        if value is None:
            return None
        from .memory import parse_size

        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            value = repr(value)
        try:
            parse_size(value, key)
        except UserError:
            raise ConfigError(f"{where}: {key} is {value!r}, expected a memory size such as 3G, "
                              f"512M, 1.5GB or a number of bytes") from None
        return value


class OneOf:
    """A node holding one of several kinds, chosen by its ``name`` key.

    Args:
        kinds (dict or callable): kind name -> schema (a dict of keys) of that
            kind, or a function returning that dict (read each time it is needed).
        default (str): the kind used when ``name`` is absent.
    """

    def __init__(self, kinds, default):
        self._kinds = kinds
        self.default = default

    @property
    def kinds(self):
        return self._kinds() if callable(self._kinds) else self._kinds


def _annotated_types(annotation):
    """``(types, nullable)`` of a parameter annotation such as ``int`` or ``Optional[str]``."""
    args = typing.get_args(annotation)
    if args:  # Optional[X], Union[X, None], X | None
        types = tuple(a for a in args if a is not type(None))
        return types, len(types) < len(args)
    return (annotation,), False


def arch_schema(cls):
    """The ``Arch`` keys of network ``cls``, read from its constructor signature.

    Every argument needs a default; its type is the annotation if there is
    one, else the type of the default. A default of ``None`` makes the key
    nullable (of type ``str`` unless annotated otherwise).
    """
    schema = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty:
            raise TypeError(f"{cls.__name__}.__init__: argument {name} needs a default "
                            "(the config's Arch section is read from the defaults)")
        default = param.default
        if param.annotation is not param.empty:
            types, nullable = _annotated_types(param.annotation)
        elif default is None:
            types, nullable = (str,), True
        else:
            types, nullable = (type(default),), False
        schema[name] = Field(types, default, nullable=nullable or default is None)
    return schema


def _arch_kinds():
    from .modeling import MODELS  # imports Paddle: only when an Arch section is read

    return {name: arch_schema(cls) for name, cls in MODELS.items()}


def check_arch(arch, where):
    """Run the network's own ``check_arch(**kwargs)`` on a resolved ``Arch`` section.

    A network class may define it to refuse values its constructor cannot
    build (it raises ``ValueError`` with the reason); the reason becomes a
    :class:`ConfigError` naming the file.
    """
    from .modeling import MODELS

    args = dict(arch)
    check = getattr(MODELS[args.pop("name")], "check_arch", None)
    if check is None:
        return
    try:
        check(**args)
    except ValueError as err:
        raise ConfigError(f"{where}: Arch: {err}") from None


_PAIRED_FOLDER = {
    "root": Field(str),
    "patch_size": Field(int, None, nullable=True, minimum=8),
    "augment": Field(bool, False),
    "repeat": Field(int, 1, minimum=1),
    "cache": Field(bool, False),
}

_DATASETS = OneOf({
    # input/ + groundtruth/ PNG pairs matched by file name (SIDD patches, user data).
    "PairedImageFolder": dict(_PAIRED_FOLDER, input_dir=Field(str, "input"),
                              target_dir=Field(str, "groundtruth")),
    # DPDD: left/right dual-pixel views (16-bit PNG) stacked as 6 channels, and the target.
    "DualPixelFolder": dict(_PAIRED_FOLDER, left_dir=Field(str, "inputL"),
                            right_dir=Field(str, "inputR"), target_dir=Field(str, "target")),
    # The same, made by ppmirnet.data.lite (under root/train, root/val) when absent;
    # task: which degradation (denoise, sr at `scale`, lowlight).
    "LitePairs": dict(_PAIRED_FOLDER, split=Field(str, choices=("train", "val")),
                      task=Field(str, "denoise", choices=LITE_TASKS),
                      scale=Field(int, 4, choices=LITE_SR_SCALES)),
    # SIDD validation: ValidationNoisyBlocksSrgb.mat + ValidationGtBlocksSrgb.mat.
    "SIDDValidationBlocks": {
        "noisy_mat": Field(str),
        "gt_mat": Field(str),
        "limit": Field(int, None, nullable=True, minimum=1),
    },
    # DND sRGB benchmark: info.mat + images_srgb/*.mat; input only.
    "DNDBenchmark": {"root": Field(str)},
}, default="PairedImageFolder")

_SAMPLER = {
    "batch_size": Field(int, minimum=1),
    "shuffle": Field(bool, True),
    "drop_last": Field(bool, True),
}

_LOADER = {
    "num_workers": Field(int, 0, minimum=0),
    "use_shared_memory": Field(bool, True),
}

SCHEMA = {
    "Global": {
        "device": Field(str, "auto", pattern=r"auto|cpu|gpu(:\d+)?", hint="auto, cpu, gpu or gpu:N"),
        # Threads of dygraph's CPU math (training, eval, predict on CPU); null:
        # this process's share of the machine's cores.
        "cpu_threads": Field(int, None, nullable=True, minimum=1),
        "seed": Field(int, 42),
        # Exactly one of the two: epoch-based (MIRNet) or iteration-based (MIRNet-v2) training.
        "epochs": Field(int, None, nullable=True, minimum=1),
        "total_iters": Field(int, None, nullable=True, minimum=1),
        "output_dir": Field(str),
        "pretrained_model": Field(str, None, nullable=True),
        "resume": Field(str, None, nullable=True),
        "auto_cast": Field(str, None, nullable=True, choices=(None, "amp", "O1", "O2")),
        "scale_loss": Field(float, 65536.0, minimum=1.0),
        "use_dynamic_loss_scaling": Field(bool, True),
        "save_inference_dir": Field(str, "./inference"),
        "print_batch_step": Field(int, 10, minimum=1),
        "eval_during_train": Field(bool, True),
        "eval_interval": Field(int, 1, minimum=1),
        "eval_interval_iters": Field(int, None, nullable=True, minimum=1),
        "save_interval_iters": Field(int, None, nullable=True, minimum=1),
        "max_iters": Field(int, None, nullable=True, minimum=1),
        # Stop after this many consecutive iterations with a non-finite loss
        # (each is skipped, as AMP's loss scaler skips overflowing steps).
        "max_nonfinite_steps": Field(int, 20, minimum=1),
        "final_eval_vs_input": Field(bool, False),
        "use_visualdl": Field(bool, False),
        "save_val_images": Field(int, 0, minimum=0),
        # Memory budget of evaluation and validation (and of predict with -c):
        # whole images where their predicted peak fits, else the largest tiles
        # that fit (ppmirnet.memory). null: half the memory available at start.
        "max_memory": SizeField(),
    },
    # One kind per network of ppmirnet.modeling.MODELS, keys from its constructor.
    "Arch": OneOf(_arch_kinds, default="MIRNet"),
    "Loss": OneOf({
        "CharbonnierLoss": {"eps": Field(float, 1e-3, minimum=0.0), "clamp": Field(bool, True)},
        "L1Loss": {"clamp": Field(bool, True)},
    }, default="CharbonnierLoss"),
    "Optimizer": OneOf({
        name: {
            "beta1": Field(float, 0.9, minimum=0.0, below=1.0),
            "beta2": Field(float, 0.999, minimum=0.0, below=1.0),
            "epsilon": Field(float, 1e-8, minimum=0.0),
            "weight_decay": Field(float, 0.0, minimum=0.0),
            "grad_clip_norm": Field(float, None, nullable=True, minimum=0.0),
        }
        for name in ("Adam", "AdamW")
    }, default="Adam"),
    "LRScheduler": OneOf({
        "WarmupCosine": {
            "learning_rate": Field(float, minimum=0.0),
            "warmup_epochs": Field(float, 0.0, minimum=0.0),
            "eta_min": Field(float, 0.0, minimum=0.0),
            "by_epoch": Field(bool, True),
        },
        "Constant": {"learning_rate": Field(float, minimum=0.0)},
        "CosineAnnealingRestartCyclicLR": {
            "learning_rate": Field(float, minimum=0.0),
            "periods": Field(list, item=int),
            "restart_weights": Field(list),
            "eta_mins": Field(list),
        },
    }, default="WarmupCosine"),
    "DataLoader": {
        "Train": {
            "dataset": _DATASETS,
            "sampler": dict(_SAMPLER),
            "loader": dict(_LOADER),
            "mixup": {
                "start_epoch": Field(int, None, nullable=True, minimum=1),
                "alpha": Field(float, 1.2, minimum=0.0),
                # BasicSR's mixing: half the batches untouched, one lambda per batch.
                "use_identity": Field(bool, False),
                "one_lambda": Field(bool, False),
            },
            # Progressive learning (iteration-based runs): stage i trains
            # iters[i] iterations on batch_sizes[i] crops of patch_sizes[i].
            "progressive": {
                "batch_sizes": Field(list, None, nullable=True, item=int),
                "patch_sizes": Field(list, None, nullable=True, item=int),
                "iters": Field(list, None, nullable=True, item=int),
            },
        },
        "Eval": {
            "dataset": _DATASETS,
            "sampler": {"batch_size": Field(int, 1, minimum=1)},
            "loader": dict(_LOADER),
        },
    },
    # The task's evaluation protocol (ppmirnet.metrics): denoising and
    # enhancement measure RGB floats, full image; RealSR the 8-bit output's
    # Y channel with `scale` border pixels cropped.
    "Metric": {
        "names": Field(list, ["psnr", "ssim"], item=str),
        "best": Field(str, "psnr", choices=METRIC_NAMES),
        "color": Field(str, "rgb", choices=COLORS),
        "crop_border": Field(int, 0, minimum=0),
        "quantize": Field(bool, False),
    },
}


def _resolve(raw, schema, path, where):
    """Check ``raw`` against ``schema`` and fill in defaults; returns a new dict."""
    if isinstance(schema, Field):
        if raw is _REQUIRED:
            if schema.default is _REQUIRED:
                raise ConfigError(f"{where}: missing required key {path}")
            return copy.deepcopy(schema.default)
        return schema.check(raw, path, where)
    if raw is _REQUIRED or raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {path} must be a mapping, got {raw!r}")
    if isinstance(schema, OneOf):
        name = raw.get("name", schema.default)
        if name not in schema.kinds:
            valid = ", ".join(schema.kinds)
            raise ConfigError(f"{where}: {path}.name is {name!r}, expected one of: {valid}")
        out = {"name": name}
        out.update(_resolve({k: v for k, v in raw.items() if k != "name"},
                            schema.kinds[name], path, where))
        return out
    for key in raw:
        if key not in schema:
            full = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key {full}")
    out = {}
    for key, sub in schema.items():
        full = f"{path}.{key}" if path else key
        out[key] = _resolve(raw.get(key, _REQUIRED), sub, full, where)
    return out


def _merge(base, update):
    """Deep-merge ``update`` into a copy of ``base``.

    A node whose ``name`` changes (another dataset kind, another loss...) is
    replaced, not merged, since the keys of one kind mean nothing to another.
    """
    if not isinstance(base, dict) or not isinstance(update, dict):
        return copy.deepcopy(update)
    if "name" in update and "name" in base and update["name"] != base["name"]:
        return copy.deepcopy(update)
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def _fill_names(raw, schema):
    """Write the default ``name`` into kind-selected nodes that leave it out (in place).

    Merging needs it: an update naming another kind replaces such a node, one
    naming the same kind (or none) is merged into it.
    """
    if not isinstance(raw, dict):
        return raw
    if isinstance(schema, OneOf):
        raw.setdefault("name", schema.default)
        kind = schema.kinds.get(raw["name"], {})
        for key, value in raw.items():
            if key in kind:
                _fill_names(value, kind[key])
    elif isinstance(schema, dict):
        for key, value in raw.items():
            if key in schema:
                _fill_names(value, schema[key])
    return raw


def _read_yaml(path, seen=()):
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    base = data.pop("_base_", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: _base_ must be a file path")
        base_path = os.path.normpath(os.path.join(os.path.dirname(path), base))
        if base_path in seen:
            raise ConfigError(f"{path}: _base_ chain loops back to {base_path}")
        base_data = _fill_names(_read_yaml(base_path, seen + (os.path.normpath(path),)), SCHEMA)
        data = _merge(base_data, data)
    return data


def _schema_at(keys):
    """The schema node a dotted override path leads to, or None if it is unknown."""
    node = SCHEMA
    for key in keys:
        if isinstance(node, OneOf):
            if key == "name":
                return Field(str)
            # Any kind declaring the key accepts it; the resolved config checks the kind.
            subs = [k[key] for k in node.kinds.values() if key in k]
            if not subs:
                return None
            node = subs[0]
        elif isinstance(node, dict):
            if key not in node:
                return None
            node = node[key]
        else:
            return None
    return node


def split_override(item):
    """Split ``Section.key=value`` into ``(["Section", "key"], "value")``.

    The one syntax of every ``-o`` (training configs and the serving
    config); the value is still text, see :func:`override_value`.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like Section.key=value")
    dotted, text = item.split("=", 1)
    keys = dotted.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override {item!r}: bad key {dotted!r}")
    return keys, text.strip()


def override_value(text, item):
    """The value text of override ``item`` read as YAML (never evaluated); empty is null."""
    try:
        return yaml.safe_load(text) if text else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {item!r}: value is not valid YAML: {err}") from None


def parse_override(item, where):
    """Split ``Section.key=value`` into (keys, value), the key checked, the value read as YAML."""
    keys, text = split_override(item)
    if _schema_at(keys) is None:
        raise ConfigError(f"{where}: unknown key {'.'.join(keys)} (from -o {item})")
    return keys, override_value(text, item)


def apply_overrides(raw, overrides, where):
    """Apply ``-o`` overrides to the raw (unresolved) config dict, in order."""
    raw = copy.deepcopy(raw)
    for item in overrides or []:
        keys, value = parse_override(item, where)
        update = value
        for key in reversed(keys):
            update = {key: update}
        try:
            raw = _merge(_fill_names(raw, SCHEMA), update)
        except Exception as err:  # a scalar where a mapping was expected
            raise ConfigError(f"override {item!r} cannot be applied: {err}") from None
    return raw


def load_config(path, overrides=None):
    """Read ``path``, apply ``overrides`` (``["Section.key=value", ...]``), check and fill defaults.

    Returns the resolved config: a plain dict holding every key of the schema.
    """
    raw = _anchor_paths(_read_yaml(path), path)
    raw = apply_overrides(raw, overrides, path)
    for key, value in raw.items():
        if isinstance(value, dict) or key not in SCHEMA:
            continue
        raise ConfigError(f"{path}: section {key} must be a mapping")
    cfg = _resolve(raw, SCHEMA, "", path)
    unknown = [m for m in cfg["Metric"]["names"] if m not in METRIC_NAMES]
    if unknown:
        raise ConfigError(f"{path}: Metric.names has unknown metric {unknown[0]!r} "
                          f"(expected {', '.join(METRIC_NAMES)})")
    if cfg["Metric"]["best"] not in cfg["Metric"]["names"]:
        raise ConfigError(f"{path}: Metric.best {cfg['Metric']['best']!r} is not in Metric.names")
    check_arch(cfg["Arch"], path)
    _check_length(cfg, path)
    cfg["Global"]["config_file"] = path
    return cfg


def _check_length(cfg, path):
    """Epochs or iterations (not both), and progressive stages that fit the run and the loader."""
    global_cfg = cfg["Global"]
    if (global_cfg["epochs"] is None) == (global_cfg["total_iters"] is None):
        raise ConfigError(f"{path}: set exactly one of Global.epochs (epoch-based training) and "
                          f"Global.total_iters (iteration-based)")
    train = cfg["DataLoader"]["Train"]
    prog = train["progressive"]
    given = [k for k, v in prog.items() if v is not None]
    if not given:
        return
    if len(given) != 3 or len({len(v) for v in prog.values()}) != 1 or not prog["iters"]:
        raise ConfigError(f"{path}: DataLoader.Train.progressive needs batch_sizes, patch_sizes "
                          f"and iters as lists of one length")
    if global_cfg["total_iters"] is None or sum(prog["iters"]) != global_cfg["total_iters"]:
        raise ConfigError(f"{path}: DataLoader.Train.progressive.iters sum to "
                          f"{sum(prog['iters'])}, but Global.total_iters is {global_cfg['total_iters']}")
    if train["sampler"]["batch_size"] != max(prog["batch_sizes"]):
        raise ConfigError(f"{path}: DataLoader.Train.sampler.batch_size must be the largest "
                          f"progressive batch size ({max(prog['batch_sizes'])})")
    patch = train["dataset"].get("patch_size")
    if patch != max(prog["patch_sizes"]):
        raise ConfigError(f"{path}: DataLoader.Train.dataset.patch_size must be the largest "
                          f"progressive patch size ({max(prog['patch_sizes'])})")


# The repository (configs/ lives in it) and the config keys that are paths.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PATH_KEYS = {
    "Global": ("output_dir", "save_inference_dir", "pretrained_model"),
    "dataset": ("root", "noisy_mat", "gt_mat"),
}


def _anchor_paths(raw, path):
    """Relative paths written in the repository's own configs are relative to the repository.

    ``./output/...`` and ``./data/lite`` then mean the same folders (ignored by
    git) whatever the working directory; paths given with ``-o`` and those of
    configs outside the repository stay relative to the working directory.
    """
    if os.path.commonpath([os.path.abspath(path), REPO_ROOT]) != REPO_ROOT:
        return raw

    def anchor(section, kind):
        for key in _PATH_KEYS[kind]:
            value = section.get(key)
            if isinstance(value, str) and value and not os.path.isabs(value):
                section[key] = os.path.normpath(os.path.join(REPO_ROOT, value))

    raw = copy.deepcopy(raw)
    if isinstance(raw.get("Global"), dict):
        anchor(raw["Global"], "Global")
    for mode in ("Train", "Eval"):
        section = (raw.get("DataLoader") or {}).get(mode)
        if isinstance(section, dict) and isinstance(section.get("dataset"), dict):
            anchor(section["dataset"], "dataset")
    return raw


def dump_config(cfg):
    """The resolved config as YAML text (without the bookkeeping key ``config_file``)."""
    data = copy.deepcopy(cfg)
    data.get("Global", {}).pop("config_file", None)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def save_config(cfg, path):
    """Write the resolved config to ``path`` atomically."""
    from .utils.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(dump_config(cfg))


def amp_level(cfg):
    """``Global.auto_cast`` as a Paddle AMP level: None, ``"O1"`` or ``"O2"``."""
    value = cfg["Global"]["auto_cast"]
    return {"amp": "O1", "O1": "O1", "O2": "O2"}.get(value)

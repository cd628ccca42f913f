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
"""

import copy
import os

import yaml

from .errors import ConfigError
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
        item (type): for ``list`` fields, the type of every item.
    """

    def __init__(self, types, default=_REQUIRED, nullable=False, choices=None, minimum=None,
                 item=None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.default = default
        self.nullable = nullable
        self.choices = choices
        self.minimum = minimum
        self.item = item

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
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{where}: {key} is {value!r}, must be >= {self.minimum}")
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


class OneOf:
    """A node holding one of several kinds, chosen by its ``name`` key.

    Args:
        kinds (dict): kind name -> schema (a dict of keys) of that kind.
        default (str): the kind used when ``name`` is absent.
    """

    def __init__(self, kinds, default):
        self.kinds = kinds
        self.default = default


def _f(types, default=_REQUIRED, **kw):
    return Field(types, default, **kw)


_PAIRED_FOLDER = {
    "root": _f(str),
    "patch_size": _f(int, None, nullable=True, minimum=8),
    "augment": _f(bool, False),
    "repeat": _f(int, 1, minimum=1),
    "cache": _f(bool, False),
}

_DATASETS = OneOf({
    # input/ + groundtruth/ PNG pairs matched by file name (SIDD patches, user data).
    "PairedImageFolder": dict(_PAIRED_FOLDER),
    # The same, made by ppmirnet.data.lite (under root/train, root/val) when absent.
    "LitePairs": dict(_PAIRED_FOLDER, split=_f(str, choices=("train", "val"))),
    # SIDD validation: ValidationNoisyBlocksSrgb.mat + ValidationGtBlocksSrgb.mat.
    "SIDDValidationBlocks": {
        "noisy_mat": _f(str),
        "gt_mat": _f(str),
        "limit": _f(int, None, nullable=True, minimum=1),
    },
    # DND sRGB benchmark: info.mat + images_srgb/*.mat; input only.
    "DNDBenchmark": {"root": _f(str)},
}, default="PairedImageFolder")

_SAMPLER = {
    "batch_size": _f(int, minimum=1),
    "shuffle": _f(bool, True),
    "drop_last": _f(bool, True),
}

_LOADER = {
    "num_workers": _f(int, 0, minimum=0),
    "use_shared_memory": _f(bool, True),
}

SCHEMA = {
    "Global": {
        "device": _f(str, "cpu", choices=("cpu", "gpu")),
        "seed": _f(int, 42),
        "epochs": _f(int, minimum=1),
        "output_dir": _f(str),
        "pretrained_model": _f(str, None, nullable=True),
        "resume": _f(str, None, nullable=True),
        "auto_cast": _f(str, None, nullable=True, choices=(None, "amp", "O1", "O2")),
        "scale_loss": _f(float, 65536.0, minimum=1.0),
        "use_dynamic_loss_scaling": _f(bool, True),
        "save_inference_dir": _f(str, "./inference"),
        "print_batch_step": _f(int, 10, minimum=1),
        "eval_during_train": _f(bool, True),
        "eval_interval": _f(int, 1, minimum=1),
        "eval_interval_iters": _f(int, None, nullable=True, minimum=1),
        "save_interval_iters": _f(int, None, nullable=True, minimum=1),
        "max_iters": _f(int, None, nullable=True, minimum=1),
        "final_eval_vs_input": _f(bool, False),
        "use_visualdl": _f(bool, False),
        "save_val_images": _f(int, 0, minimum=0),
    },
    "Arch": OneOf({
        "MIRNet": {
            "in_channels": _f(int, 3, minimum=1),
            "out_channels": _f(int, 3, minimum=1),
            "n_feat": _f(int, 64, minimum=1),
            "kernel_size": _f(int, 3, minimum=1),
            "stride": _f(int, 2, minimum=1),
            "n_RRG": _f(int, 3, minimum=1),
            "n_MSRB": _f(int, 2, minimum=1),
            "height": _f(int, 3, minimum=1),
            "width": _f(int, 2, minimum=1),
            "bias": _f(bool, False),
        },
        "MIRNetV2": {
            "in_channels": _f(int, 3, minimum=1),
            "out_channels": _f(int, 3, minimum=1),
            "n_feat": _f(int, 80, minimum=1),
            "chan_factor": _f(float, 1.5),
            "n_RRG": _f(int, 4, choices=(4,)),
            "n_MRB": _f(int, 2, minimum=1),
            "height": _f(int, 3, choices=(3,)),
            "width": _f(int, 2, choices=(2,)),
            "scale": _f(int, 1, choices=(1,)),
            "bias": _f(bool, False),
            "task": _f(str, None, nullable=True, choices=(None, "defocus_deblurring")),
        },
    }, default="MIRNet"),
    "Loss": OneOf({
        "CharbonnierLoss": {"eps": _f(float, 1e-3, minimum=0.0), "clamp": _f(bool, True)},
        "L1Loss": {"clamp": _f(bool, True)},
    }, default="CharbonnierLoss"),
    "Optimizer": OneOf({
        name: {
            "beta1": _f(float, 0.9),
            "beta2": _f(float, 0.999),
            "epsilon": _f(float, 1e-8),
            "weight_decay": _f(float, 0.0, minimum=0.0),
            "grad_clip_norm": _f(float, None, nullable=True),
        }
        for name in ("Adam", "AdamW")
    }, default="Adam"),
    "LRScheduler": OneOf({
        "WarmupCosine": {
            "learning_rate": _f(float),
            "warmup_epochs": _f(float, 0.0, minimum=0.0),
            "eta_min": _f(float, 0.0, minimum=0.0),
            "by_epoch": _f(bool, True),
        },
        "Constant": {"learning_rate": _f(float)},
    }, default="WarmupCosine"),
    "DataLoader": {
        "Train": {
            "dataset": _DATASETS,
            "sampler": dict(_SAMPLER),
            "loader": dict(_LOADER),
            "mixup": {
                "start_epoch": _f(int, None, nullable=True, minimum=1),
                "alpha": _f(float, 1.2, minimum=0.0),
            },
        },
        "Eval": {
            "dataset": _DATASETS,
            "sampler": {"batch_size": _f(int, 1, minimum=1)},
            "loader": dict(_LOADER),
        },
    },
    # The task's evaluation protocol (ppmirnet.metrics): denoising and
    # enhancement measure RGB floats, full image; RealSR the 8-bit output's
    # Y channel with `scale` border pixels cropped.
    "Metric": {
        "names": _f(list, ["psnr", "ssim"], item=str),
        "best": _f(str, "psnr", choices=METRIC_NAMES),
        "color": _f(str, "rgb", choices=COLORS),
        "crop_border": _f(int, 0, minimum=0),
        "quantize": _f(bool, False),
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


def parse_override(item, where):
    """Split ``Section.key=value`` into (keys, value), the value read as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like Section.key=value")
    dotted, text = item.split("=", 1)
    keys = dotted.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override {item!r}: bad key {dotted!r}")
    if _schema_at(keys) is None:
        raise ConfigError(f"{where}: unknown key {dotted} (from -o {item})")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {item!r}: value is not valid YAML: {err}") from None
    return keys, value


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
    raw = _read_yaml(path)
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
    cfg["Global"]["config_file"] = path
    return cfg


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

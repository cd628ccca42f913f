"""Restricted unpickling: weights files that cannot run code.

A pickle names the functions and classes it calls while it is read
(``posix.system`` as easily as ``numpy.ndarray``), so ``pickle.load``,
``paddle.load`` and ``torch.load`` run whatever an untrusted file asks for.
Every weights file this project reads goes through this module first:

- :func:`load_paddle` checks a ``.pdparams`` / ``.pdopt`` / ``.pdstates``
  against what ``paddle.save`` writes for this project's files (numpy arrays,
  containers, numbers, strings, Paddle's random generator state), in a pass
  that builds inert stand-ins only, then lets Paddle read the checked bytes.
- :func:`load_torch` reads a PyTorch ``.pth`` (the zip format and the legacy
  format of old PyTorch) into numpy arrays without PyTorch, admitting only
  the tensor and storage rebuild functions a state dict needs.

Anything else a file would call is refused by its dotted name before it is
called (:class:`UnsafePickleError`); nothing of such a file runs.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from .errors import UserError

TRUST_HINT = "load only weights from sources you trust"


class UnsafePickleError(UserError):
    """A weights file whose unpickling would call something weights never need."""

    def __init__(self, path, name):
        self.path = path
        self.name = name
        super().__init__(f"{path} would call {name} when loaded, which weights never need: "
                         f"refused, nothing in it was run ({TRUST_HINT})")


# Python 2 spellings that pickles of protocol < 3 carry (``__builtin__.set``).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

# What numpy arrays and scalars pickle to, under numpy 1.x and 2.x.
_NUMPY_GLOBALS = {
    (core, name)
    for core in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype")}

# Plain containers pickle without naming a global, except these (protocol 2
# writes sets and bytes through a call).
_BUILTIN_GLOBALS = {("builtins", "set"), ("builtins", "frozenset"), ("builtins", "tuple"),
                    ("_codecs", "encode"), ("collections", "OrderedDict")}

# paddle.save (Paddle 2.6 and 3.x) of this project's .pdparams, .pdopt and
# .pdstates: state dicts become numpy arrays, a Tensor inside another object
# becomes ``tuple((name, array))``, and Paddle 3's CPU/GPU generator state
# pickles as its class plus a state to set. Paddle's reducer of a raw
# DenseTensor goes through ``builtins.eval``, which is not admitted.
PADDLE_GLOBALS = _NUMPY_GLOBALS | _BUILTIN_GLOBALS | {
    (module, "GeneratorState")
    for module in ("paddle.base.libpaddle", "paddle.base.core", "paddle.fluid.libpaddle",
                   "paddle.fluid.core")
}


def _split(module, name):
    return _PY2_MODULES.get(module, module), name


def _check_name(path, module, name, admitted):
    module, name = _split(module, name)
    if (module, name) not in admitted:
        raise UnsafePickleError(path, f"{module}.{name}")
    return module, name


# -- checking a Paddle file ----------------------------------------------------------------

class _Inert:
    """Stands in for an admitted class or function during the check: calls nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _CheckUnpickler(pickle.Unpickler):
    def __init__(self, file, path, admitted):
        super().__init__(file, encoding="latin1")
        self._path = path
        self._admitted = admitted
        self._inert = {}

    def find_class(self, module, name):
        key = _check_name(self._path, module, name, self._admitted)
        if key in _BUILTIN_GLOBALS:
            # Containers are filled by the pickle (SETITEMS on an OrderedDict): the real ones.
            return _builtin_global(*key)
        if key not in self._inert:
            self._inert[key] = type("Inert_" + key[1], (_Inert,), {})
        return self._inert[key]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it refers to persistent objects, as PyTorch files do")


def _builtin_global(module, name):
    import codecs

    return {("collections", "OrderedDict"): collections.OrderedDict,
            ("_codecs", "encode"): codecs.encode,
            ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
            ("builtins", "tuple"): tuple}[(module, name)]


def check_paddle_bytes(data, path):
    """Raise :class:`UnsafePickleError` unless ``data`` (a pickle) calls only what paddle.save writes.

    Nothing the pickle names is imported or called: each admitted name is
    replaced by an inert stand-in while the whole pickle is read.
    """
    torch_hint = (f"cannot read {path}: it is a PyTorch checkpoint, not Paddle weights (convert "
                  f"it with: ppmirnet convert --src {path} --dst W.pdparams)")
    if data[:2] == b"PK":
        raise UserError(torch_hint.replace("it is a PyTorch checkpoint", "it is a zip archive "
                                           "(a PyTorch checkpoint?)"))
    try:
        # Like paddle.load, only the first pickle of the file counts.
        first = _CheckUnpickler(io.BytesIO(data), path, PADDLE_GLOBALS).load()
    except UnsafePickleError as err:
        if err.name.startswith("torch."):  # a legacy .pth given as weights
            raise UserError(torch_hint) from None
        raise
    except Exception as err:  # a damaged or foreign file fails in many ways
        raise UserError(f"cannot read {path}: not a Paddle weights file ({_reason(err)})") from None
    if isinstance(first, int) and first == _LEGACY_MAGIC:
        raise UserError(torch_hint)


def load_paddle(path, **configs):
    """``paddle.load(path, **configs)`` of a file checked by :func:`check_paddle_bytes` first.

    Paddle reads the very bytes that were checked, from memory. A file
    whose check fails raises before Paddle sees it.
    """
    import paddle

    with open(path, "rb") as f:
        data = f.read()
    check_paddle_bytes(data, path)
    return paddle.load(io.BytesIO(data), **configs)


# -- reading a PyTorch file ----------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
    """A storage named by a pickle; its bytes are read when the tensors are built."""

    def __init__(self, key, dtype, numel):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.array = None


class _View:
    """A legacy-format view into a storage (``view_metadata``)."""

    def __init__(self, root, offset, numel):
        self.root = root
        self.offset = offset
        self.numel = numel


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)


class _Marker:
    """An admitted class that is only compared against (a storage or tensor type)."""

    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, (_Storage, _View)):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


def _rebuild_from_type(func, new_type, args, state):
    if not isinstance(new_type, _Marker):
        raise pickle.UnpicklingError("a tensor of an unknown type")
    return func(*args)


_TORCH_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): _Marker("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): _Marker("torch.nn.parameter.Parameter"),
}
_TORCH_FUNCTIONS.update({("torch", name): _Marker(name) for name in _STORAGE_DTYPES})
_TORCH_GLOBALS = set(_TORCH_FUNCTIONS) | _NUMPY_GLOBALS | _BUILTIN_GLOBALS


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self.storages = {}

    def find_class(self, module, name):
        module, name = _check_name(self._path, module, name, _TORCH_GLOBALS)
        if (module, name) in _TORCH_FUNCTIONS:
            return _TORCH_FUNCTIONS[(module, name)]
        if module.startswith("numpy"):
            return _numpy_global(name)
        return _builtin_global(module, name)

    def persistent_load(self, pid):
        pid = tuple(v.decode("ascii") if isinstance(v, bytes) else v for v in pid)
        if not pid or pid[0] != "storage":
            # 'module' records come with torch.save of a whole model, not of a state dict.
            raise pickle.UnpicklingError(f"a persistent {pid[0] if pid else 'object'!r} record "
                                         f"(only tensor storages are read)")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _Marker) or storage_type.name not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage {storage_type!r}")
        key = str(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, _STORAGE_DTYPES[storage_type.name], numel)
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            _view_key, offset, view_numel = view
            return _View(storage, int(offset), int(view_numel))
        return storage


def _numpy_global(name):
    # numpy 1.x writes numpy.core, numpy 2.x numpy._core: both mean the installed one.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    return {"_reconstruct": multiarray._reconstruct, "scalar": multiarray.scalar,
            "ndarray": np.ndarray, "dtype": np.dtype}[name]


def _to_numpy(raw, dtype, little_endian=True):
    if dtype == "bfloat16":
        halves = np.frombuffer(raw, dtype="<u2" if little_endian else ">u2").astype(np.uint32)
        return (halves << 16).view(np.float32)
    dt = np.dtype(dtype).newbyteorder("<" if little_endian else ">")
    flat = np.frombuffer(raw, dtype=dt)  # read-only; the tensors built from it are copies
    return flat if dt.isnative else flat.astype(dt.newbyteorder("="))


def _build(ref, path):
    storage, base = ref.storage, 0
    if isinstance(storage, _View):
        storage, base = storage.root, storage.offset
    flat = storage.array
    if flat is None:
        raise UserError(f"{path}: storage {storage.key} has no data")
    if any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride) or len(ref.size) != len(ref.stride):
        raise UserError(f"{path}: a tensor with an invalid shape {ref.size} / stride {ref.stride}")
    start = base + int(ref.offset)
    if 0 in ref.size:
        return np.zeros(ref.size, flat.dtype)
    last = start + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if start < 0 or last >= flat.size:
        raise UserError(f"{path}: a tensor reaches past its storage ({last + 1} > {flat.size} elements)")
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(
        flat[start:], shape=ref.size, strides=[s * item for s in ref.stride], writeable=False).copy()


def _materialize(obj, path):
    if isinstance(obj, _TensorRef):
        return _build(obj, path)
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialize(v, path)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialize(v, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialize(v, path) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(v, path) for v in obj)
    if isinstance(obj, (_Storage, _View, _Marker)):
        raise UserError(f"{path}: holds a bare storage or type, not a state dict")
    return obj


def _reason(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1]}" if text else type(err).__name__


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            raise UserError(f"cannot read {path} as a PyTorch checkpoint: a zip archive "
                            f"without data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        little = True
        if prefix + "byteorder" in names:
            little = archive.read(prefix + "byteorder").strip() != b"big"
        unpickler = _TorchUnpickler(io.BytesIO(archive.read(pkl[0])), path)
        obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise UserError(f"cannot read {path}: storage {key} is missing") from None
            storage.array = _to_numpy(raw, storage.dtype, little)
    return obj


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_legacy(path):
    with open(path, "rb") as f:
        def plain():
            return _TorchUnpickler(f, path).load()

        if plain() != _LEGACY_MAGIC:
            raise UserError(f"cannot read {path} as a PyTorch checkpoint: not a zip archive "
                            f"nor a legacy PyTorch file")
        plain()  # protocol version
        info = plain()
        little = not isinstance(info, dict) or info.get("little_endian", True)
        unpickler = _TorchUnpickler(f, path)
        obj = unpickler.load()
        keys = plain()
        if not isinstance(keys, list):
            raise UserError(f"cannot read {path}: no storage list after the object")
        for key in keys:
            storage = unpickler.storages.get(str(key))
            if storage is None:
                raise UserError(f"cannot read {path}: storage {key} is not used by the object")
            head = f.read(8)
            if len(head) != 8:
                raise UserError(f"cannot read {path}: the file ends inside storage {key} "
                                f"(a truncated download?)")
            numel = struct.unpack("<q" if little else ">q", head)[0]
            itemsize = 2 if storage.dtype == "bfloat16" else np.dtype(storage.dtype).itemsize
            raw = f.read(numel * itemsize)
            if numel < 0 or len(raw) != numel * itemsize:
                raise UserError(f"cannot read {path}: the file ends inside storage {key} "
                                f"(a truncated download?)")
            storage.array = _to_numpy(raw, storage.dtype, little)
    return obj


def load_torch(path):
    """Read a PyTorch ``.pth``/``.pt`` file without PyTorch: tensors become numpy arrays.

    Reads the zip format (PyTorch 1.6 and later) and the legacy format of
    older PyTorch. Containers, numbers and strings come back as they are;
    anything but tensor storages, ``OrderedDict`` and numpy arrays is
    refused by name (:class:`UnsafePickleError`) without being called.
    """
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        if head.startswith(b"PK"):
            obj = _load_zip(path)
        elif head[:1] == b"\x80":
            obj = _load_legacy(path)
        else:
            raise UserError(f"cannot read {path} as a PyTorch checkpoint: not a zip archive nor "
                            f"a legacy PyTorch file")
    except UserError:
        raise
    except Exception as err:  # truncated or damaged files fail in many ways
        raise UserError(f"cannot read {path} as a PyTorch checkpoint ({_reason(err)})") from None
    return _materialize(obj, path)

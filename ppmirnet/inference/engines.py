"""Which engine restores, and the export cache that lets weights run on every engine.

Engines:

==================  ============================================  =====================
engine              runs                                          needs
==================  ============================================  =====================
``dygraph``         the network itself, from ``.pdparams``        paddlepaddle
``paddle-inference`` the exported program (oneDNN on CPU, GPU,    paddlepaddle
                    TensorRT)
``onnx``            the ONNX export in onnxruntime                onnxruntime (export:
                                                                  paddle2onnx, onnx)
``openvino``        the program exported for OpenVINO (CPU)       openvino
==================  ============================================  =====================

``auto`` (the default of ``ppmirnet predict`` and ``Restorer(weights)``)
picks, on a CPU, the fastest one installed in the order measured in
``benchmarks/README.md``: OpenVINO, onnxruntime, Paddle Inference, dygraph.
On a GPU it stays dygraph (with the config's mixed precision).

An engine other than dygraph runs an export of the weights. It is made once
and kept under ``$PPMIRNET_HOME/exports`` (default
``~/.cache/ppmirnet/exports``), in a folder named after the engine and a
hash of the weights' content, the config's network when one is given and the
versions of the libraries that write and read the export; later runs with
the same weights reuse it. Each entry is written in a temporary folder and
renamed when complete, so an interrupted export never leaves an entry that
later runs would load.

Every engine computes in float32. ``precision="bf16"`` runs OpenVINO in
bfloat16 on CPUs with bfloat16 units (the same export: the precision is a
setting of the compiled model); no other engine offers it.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import time

from ..download import file_digest, home
from ..errors import MissingDependencyError, UserError
from .openvino_runtime import PRECISIONS as OPENVINO_PRECISIONS

ENGINES = ("dygraph", "paddle-inference", "onnx", "openvino")
CHOICES = ENGINES + ("auto",)
# Fastest first, as measured on CPUs (benchmarks/README.md).
CPU_ORDER = ("openvino", "onnx", "paddle-inference", "dygraph")
# Precisions an engine can be asked for, float32 first (the default, the one parity is checked in).
PRECISIONS = {"dygraph": ("fp32",), "paddle-inference": ("fp32",), "onnx": ("fp32",),
              "openvino": tuple(OPENVINO_PRECISIONS)}
# The modules each engine needs to export and run weights.
_MODULES = {
    "dygraph": ("paddle",),
    "paddle-inference": ("paddle",),
    "onnx": ("paddle", "paddle2onnx", "onnx", "onnxruntime"),
    "openvino": ("paddle", "openvino"),
}
# Distributions whose versions key an export (a new version may write or read it differently).
_DISTRIBUTIONS = {
    "dygraph": (),
    "paddle-inference": (),
    "onnx": ("paddle2onnx", "onnx", "onnxruntime"),
    "openvino": ("openvino",),
}
_PADDLE_DISTRIBUTIONS = ("paddlepaddle", "paddlepaddle-gpu")


def installed(engine):
    """Whether the modules ``engine`` needs to run weights can be imported (without importing them)."""
    return all(importlib.util.find_spec(module) is not None for module in _MODULES[engine])


def choose_engine(engine, device):
    """The engine to run for ``engine`` (one of :data:`CHOICES`) on ``device`` (``cpu`` or ``gpu``).

    ``auto``: dygraph on a GPU (as before engines could be chosen), on a CPU
    the first installed of :data:`CPU_ORDER`.
    """
    if engine not in CHOICES:
        raise UserError(f"engine must be one of {', '.join(CHOICES)}, got {engine!r}")
    if engine != "auto":
        return engine
    if device == "gpu":
        return "dygraph"
    return next(e for e in CPU_ORDER if installed(e))


def _version(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def library_versions(engine):
    """The versions an export for ``engine`` depends on, as a dict."""
    from .. import __version__

    paddle = next((v for v in map(_version, _PADDLE_DISTRIBUTIONS) if v), None)
    versions = {"ppmirnet": __version__, "paddlepaddle": paddle}
    versions.update({name: _version(name) for name in _DISTRIBUTIONS[engine]})
    return versions


def _weights_file(weights):
    from ..engine.checkpoint import weights_file  # imports Paddle: only when weights are given

    return weights_file(str(weights))


def cache_key(weights, engine, arch=None):
    """The export cache's key for ``weights`` on ``engine``: a hex digest.

    It changes with the weights' content, the network given by a config
    (``arch``, for weights that do not record theirs) and
    :func:`library_versions`; not with the weights' path or time stamp.
    """
    record = {"weights_sha256": file_digest(_weights_file(weights))[1], "engine": engine,
              "arch": arch, "versions": library_versions(engine)}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]


def _model_path(entry, engine):
    """What the runner of ``engine`` loads from a cache entry."""
    return os.path.join(entry, "model.onnx") if engine == "onnx" else entry


def _write_export(model, folder, engine):
    """Export ``model`` into ``folder`` as ``engine`` reads it."""
    from ..export import export_inference_model

    if engine == "paddle-inference":
        # The .pdmodel too: on CPU with oneDNN it runs with memory optimisation.
        export_inference_model(model, folder, legacy_format=True)
    elif engine == "openvino":
        export_inference_model(model, folder, legacy_format=True, forms="openvino")
    elif engine == "onnx":
        from .onnx_runtime import export_onnx

        programs = os.path.join(folder, "program")
        export_inference_model(model, programs)
        export_onnx(programs, os.path.join(folder, "model.onnx"))
        shutil.rmtree(programs)
    else:
        raise ValueError(f"engine {engine!r} runs weights without an export")


def exported_model(weights, engine, config=None, log=print):
    """The export of ``weights`` for ``engine``, made once into the cache; returns its path.

    Args:
        weights (str): a ``.pdparams`` (with or without the extension).
        engine (str): ``paddle-inference``, ``onnx`` or ``openvino``.
        config (dict): resolved config, for weights that do not record their
            network (see :func:`ppmirnet.restorer.load_dygraph_model`).
        log (callable): told when an export is made (and how long it took)
            or reused.

    Returns the model folder (Paddle Inference, OpenVINO) or ONNX file.
    """
    for module in _MODULES[engine]:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(f"the {engine} engine needs {module}: "
                                         f"pip install -r requirements.txt")
    arch = config.get("Arch") if config else None
    entry = os.path.join(home(), "exports", f"{engine}-{cache_key(weights, engine, arch)}")
    if os.path.isdir(entry):
        log(f"{engine}: using the export of {weights} in {entry}")
        return _model_path(entry, engine)
    import paddle

    from ..restorer import load_dygraph_model
    from ..utils.io import atomic_folder

    start = time.perf_counter()
    previous = paddle.get_device()
    paddle.set_device("cpu")  # exporting needs no GPU, and must not take its memory
    try:
        model, _ = load_dygraph_model(weights, config, log=log)
        with atomic_folder(entry) as tmp:
            _write_export(model, tmp, engine)
            with open(os.path.join(tmp, "export.json"), "w") as f:
                json.dump({"weights": os.path.abspath(_weights_file(weights)), "engine": engine,
                           "versions": library_versions(engine)}, f, indent=1)
    finally:
        paddle.set_device(previous)
    log(f"{engine}: exported {weights} in {time.perf_counter() - start:.1f} s to {entry} "
        f"(later runs reuse it)")
    return _model_path(entry, engine)


def check_precision(engine, precision):
    """Refuse, before anything is exported, a ``precision`` that ``engine`` does not offer."""
    offered = sorted({p for precisions in PRECISIONS.values() for p in precisions})
    if precision not in offered:
        raise UserError(f"precision must be one of {', '.join(offered)}, got {precision!r}")
    if precision not in PRECISIONS[engine]:
        runs = [e for e, precisions in PRECISIONS.items() if precision in precisions]
        raise UserError(f"precision {precision} runs on the {' or '.join(runs)} engine only, "
                        f"not {engine}: add --engine {runs[0]}, or leave out --precision")
    if precision == "bf16" and installed("openvino"):
        from .openvino_runtime import check_bf16

        check_bf16()


def check_device(engine, device):
    """Refuse, before anything is exported, an ``engine`` that cannot run on ``device`` here."""
    if engine == "paddle-inference":
        from .paddle_predictor import PredictorOptions, check_device_support

        check_device_support(PredictorOptions(use_gpu=device == "gpu"))
    elif engine == "openvino" and device == "gpu":
        raise UserError("the openvino engine runs on CPU here: use --device cpu, or another engine")


def build_runner(engine, model, device="cpu", cpu_threads=2, precision="fp32"):
    """The runner of an exported ``model`` (folder or ONNX file) on ``engine``, in ``precision``."""
    check_device(engine, device)
    check_precision(engine, precision)
    if engine == "paddle-inference":
        from .paddle_predictor import PaddlePredictor, PredictorOptions

        options = PredictorOptions(use_gpu=device == "gpu", cpu_threads=cpu_threads)
        return PaddlePredictor(model, options, quiet=True)
    if engine == "onnx":
        from .onnx_runtime import OnnxPredictor

        return OnnxPredictor(model, cpu_threads, ["CUDAExecutionProvider"] if device == "gpu" else None)
    if engine == "openvino":
        from .openvino_runtime import OpenVinoPredictor

        return OpenVinoPredictor(model, cpu_threads, precision=precision)
    raise ValueError(f"engine {engine!r} has no exported runner")

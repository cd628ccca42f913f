"""ONNX export (paddle2onnx) and an onnxruntime predictor for exported MIRNet models.

The ONNX file lets users run the model where Paddle is not installed:
:class:`OnnxPredictor` needs only onnxruntime, numpy and OpenCV (through
:mod:`ppmirnet.processing`). Exporting needs Paddle and paddle2onnx.
"""

import os

import numpy as np

from ..errors import MissingDependencyError, UserError
from ..export import check_exported, find_program
from ..utils.io import atomic_path

DEFAULT_OPSET = 11
DYNAMIC_DIMS = ("batch", None, "height", "width")


def _require(module, package):
    try:
        return __import__(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{package.split('==')[0]} is not installed: pip install {package}"
        ) from err
    except ValueError as err:  # paddle2onnx 2.x on Paddle 2.6: "requires paddle >= 3"
        raise MissingDependencyError(
            f"{module} cannot be used with this PaddlePaddle ({str(err).strip()}): "
            f"pip install {package}"
        ) from err


def _clean(model):
    """Drop initializers no node reads and name the dynamic dimensions.

    paddle2onnx leaves some shape constants unused; onnxruntime would warn
    about each of them at every session start.
    """
    used = set()
    graphs = [model.graph]
    while graphs:  # the main graph and the bodies of control-flow nodes
        graph = graphs.pop()
        for node in graph.node:
            used.update(node.input)
            for attr in node.attribute:
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims, DYNAMIC_DIMS):
            if name and not dim.HasField("dim_value"):
                dim.dim_param = name
    return model


def export_onnx(model_dir, save_file, opset_version=DEFAULT_OPSET, prefer_legacy=False):
    """Convert the exported Paddle model in ``model_dir`` to ONNX at ``save_file``.

    Batch, height and width stay dynamic (named ``batch``, ``height``,
    ``width``). paddle2onnx 2.x reads the PIR ``inference.json`` directly
    (or translates a legacy ``.pdmodel``); 1.3.1, the version for Paddle
    2.6, reads the ``.pdmodel``. The file is written atomically and
    checked with ``onnx.checker``. Returns ``save_file``.
    """
    from ..compat import paddle2onnx_requirement

    _require("paddle2onnx", paddle2onnx_requirement())
    onnx = _require("onnx", "onnx==1.17.0")
    import paddle2onnx

    program, params = find_program(model_dir, prefer_legacy=prefer_legacy)
    # paddle2onnx ends the process (exit 255, its own message) on a damaged file.
    check_exported(program, params)
    # save_file=None returns the bytes and skips paddle2onnx's optional
    # Polygraphy pass, which pip-installs missing packages at run time;
    # onnxruntime folds constants itself when it loads the model.
    try:
        data = paddle2onnx.export(program, params, None, opset_version=opset_version,
                                  enable_onnx_checker=True)
    except Exception as err:  # paddle2onnx raises bare Exceptions for unsupported ops
        raise UserError(f"paddle2onnx cannot convert {program}: {err}") from err
    try:
        model = _clean(onnx.load_from_string(data))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx's DecodeError, ValidationError
        raise UserError(f"paddle2onnx made an invalid ONNX model of {program}: "
                        f"{str(err).strip().splitlines()[-1] if str(err).strip() else err}") from err
    with atomic_path(save_file) as tmp:
        onnx.save(model, tmp)
    return save_file


class OnnxPredictor:
    """An ONNX MIRNet run by onnxruntime on CPU; call it on a float32 NCHW batch.

    Args:
        onnx_file (str): model written by :func:`export_onnx`.
        cpu_threads (int): intra-op threads.
        providers (list[str]): onnxruntime execution providers, CPU by default
            (``CUDAExecutionProvider`` with onnxruntime-gpu).
    """

    def __init__(self, onnx_file, cpu_threads=2, providers=None):
        ort = _require("onnxruntime", "onnxruntime==1.32.0")
        if not os.path.isfile(onnx_file):
            raise UserError(f"ONNX model not found: {onnx_file}")
        if cpu_threads < 1:
            raise UserError(f"--cpu_threads must be >= 1, got {cpu_threads}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cpu_threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.onnx_file = onnx_file
        self.cpu_threads = cpu_threads
        self.providers = providers or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(onnx_file, opts, providers=self.providers)
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise UserError(f"onnxruntime cannot load {onnx_file}: {err}") from err
        self._input = self.session.get_inputs()[0].name
        # 3, or 6 for the dual-pixel MIRNet-v2: the model's input says.
        self.in_channels = int(self.session.get_inputs()[0].shape[1])
        self._version = ort.__version__

    def __call__(self, batch):
        """Restore a float32 NCHW batch in [0, 1]; returns an array of the same shape."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != self.in_channels:
            raise UserError(f"expected a Nx{self.in_channels}xHxW batch, got shape {batch.shape}")
        return self.session.run(None, {self._input: batch})[0]

    def describe(self):
        """Engine settings as a flat dict, for logs and the benchmark report."""
        return {
            "program": os.path.basename(self.onnx_file),
            "runtime": f"onnxruntime {self._version}",
            "runtime_device": "gpu" if "CUDAExecutionProvider" in self.providers else "cpu",
            "ir_optim": True,
            "enable_memory_optim": True,
            "enable_tensorrt": False,
            "enable_mkldnn": False,
            "cpu_math_library_num_threads": self.cpu_threads,
            "precision": "fp32",
        }

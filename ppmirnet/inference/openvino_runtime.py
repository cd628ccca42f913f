"""An OpenVINO predictor for exported MIRNet models.

:class:`OpenVinoPredictor` reads either

- the Paddle program exported for OpenVINO (``ppmirnet export --for_openvino``,
  ``deploy/openvino/export_openvino.py`` or the export cache of
  :mod:`ppmirnet.inference.engines`): ``inference.pdmodel`` written with the
  export forms of ``export_forms(model, runtime="openvino")``, which avoid
  the two operations OpenVINO's Paddle front end lacks (``prelu`` and
  ``unbind``) with exactly equal ones; no ONNX conversion, no paddle2onnx;
- or an ONNX file of :func:`ppmirnet.inference.onnx_runtime.export_onnx`.

Only OpenVINO, numpy and OpenCV are needed to run it. The CPU plugin is
compiled for one input shape at a time (a static shape runs faster than a
dynamic one); the last few compiled shapes are kept, so tiles of one size or a
folder of same-size photos compile once.

Inference precision is f32 unless bf16 is asked for: on CPUs with bfloat16
units OpenVINO's own default is bf16, which moves outputs by a few grey
levels against the other runtimes. Asked for, bf16 was 1.4-1.6x faster on an
Intel Xeon with AMX (2026-12-07) at no measurable PSNR cost on the lite tasks,
and slower on an earlier Xeon not known to have AMX (``docs/engines.md``,
``benchmarks/README.md``).
"""

import collections
import os

import numpy as np

from ..errors import MissingDependencyError, UserError

OPENVINO_REQUIREMENT = "openvino==2026.4.1"
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
PROGRAM = "inference.pdmodel"


def require_openvino():
    """The ``openvino`` module, or :class:`MissingDependencyError` naming what to install."""
    try:
        import openvino
    except ImportError as err:
        raise MissingDependencyError(f"openvino is not installed: pip install {OPENVINO_REQUIREMENT}") from err
    return openvino


def cpu_capabilities(core=None):
    """What OpenVINO's CPU plugin can compute in here: ``FP32``, ``INT8``, and ``BF16`` with bfloat16 units."""
    return list((core or require_openvino().Core()).get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def check_bf16(core=None):
    """Refuse bf16 on a CPU without bfloat16 units: OpenVINO would silently compute in f32 there."""
    found = cpu_capabilities(core)
    if "BF16" not in found:
        raise UserError(f"--precision bf16 needs a CPU with bfloat16 units (AMX or AVX512_BF16); "
                        f"OpenVINO finds {', '.join(found)} here: use fp32")


def find_model(path):
    """The model file OpenVINO reads for ``path``: an ``.onnx``/``.pdmodel`` file, or a folder's ``inference.pdmodel``."""
    if os.path.isdir(path):
        program = os.path.join(path, PROGRAM)
        if not os.path.isfile(program):
            raise UserError(f"no {PROGRAM} in {path} (export it with ppmirnet export --for_openvino, "
                            f"or give an ONNX file)")
        return program
    if not os.path.isfile(path):
        raise UserError(f"OpenVINO model not found: {path}")
    if not path.endswith((".onnx", ".pdmodel")):
        raise UserError(f"OpenVINO reads an .onnx file or an exported .pdmodel, got {path}")
    return path


class OpenVinoPredictor:
    """An exported MIRNet run by OpenVINO on CPU; call it on a float32 NCHW batch.

    Args:
        model (str): an ONNX file, an ``inference.pdmodel`` exported for
            OpenVINO, or the folder holding it.
        cpu_threads (int): inference threads.
        precision (str): ``fp32`` (default) or ``bf16`` (OpenVINO's
            ``INFERENCE_PRECISION_HINT``; refused on CPUs without bfloat16
            units, where OpenVINO would silently run f32). bf16 moves the
            outputs by a few grey levels.
        shapes_kept (int): compiled input shapes kept for reuse.
    """

    def __init__(self, model, cpu_threads=2, precision="fp32", shapes_kept=2):
        ov = require_openvino()
        if precision not in PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if cpu_threads < 1:
            raise UserError(f"--cpu_threads must be >= 1, got {cpu_threads}")
        self._core = ov.Core()
        if precision == "bf16":
            check_bf16(self._core)
        self.model_file = find_model(model)
        self.cpu_threads = cpu_threads
        self.precision = precision
        try:
            self._model = self._core.read_model(self.model_file)
        except RuntimeError as err:
            last = [line for line in str(err).strip().splitlines() if line.strip()]
            hint = (" (a program exported for Paddle Inference: export it with "
                    "ppmirnet export --for_openvino)" if "No creator found" in str(err) else "")
            raise UserError(f"OpenVINO cannot read {self.model_file}: {last[-1] if last else err}{hint}") from None
        if len(self._model.inputs) != 1:
            raise UserError(f"{self.model_file} has {len(self._model.inputs)} inputs, expected one image batch")
        channels = self._model.input(0).get_partial_shape()[1]
        # 3, or 6 for the dual-pixel MIRNet-v2: the model's input says.
        self.in_channels = channels.get_length() if channels.is_static else 3
        self._config = {"INFERENCE_NUM_THREADS": cpu_threads, "PERFORMANCE_HINT": "LATENCY",
                        "INFERENCE_PRECISION_HINT": PRECISIONS[precision]}
        self._compiled = collections.OrderedDict()  # input shape -> infer request, oldest first
        self._shapes_kept = max(1, shapes_kept)
        self._version = ov.get_version().split("-")[0]

    def _request(self, shape):
        request = self._compiled.get(shape)
        if request is not None:
            self._compiled.move_to_end(shape)
            return request
        while len(self._compiled) >= self._shapes_kept:
            self._compiled.popitem(last=False)  # frees that shape's buffers before compiling
        model = self._model.clone()
        model.reshape({model.input(0): list(shape)})
        try:
            compiled = self._core.compile_model(model, "CPU", self._config)
        except RuntimeError as err:
            raise UserError(f"OpenVINO cannot compile {self.model_file} for shape {shape}: "
                            f"{str(err).strip().splitlines()[-1]}") from None
        request = compiled.create_infer_request()
        self._compiled[shape] = request
        return request

    def __call__(self, batch):
        """Restore a float32 NCHW batch in [0, 1]; returns a new N x 3 x H x W array."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != self.in_channels:
            raise UserError(f"expected a Nx{self.in_channels}xHxW batch, got shape {batch.shape}")
        request = self._request(tuple(batch.shape))
        request.infer({0: batch})
        return request.get_output_tensor(0).data.copy()

    def describe(self):
        """Engine settings as a flat dict, for logs and the benchmark report."""
        return {
            "program": os.path.basename(self.model_file),
            "runtime": f"openvino {self._version}",
            "runtime_device": "cpu",
            "ir_optim": True,
            "enable_memory_optim": True,
            "enable_tensorrt": False,
            "enable_mkldnn": False,
            "cpu_math_library_num_threads": self.cpu_threads,
            "precision": self.precision,
        }

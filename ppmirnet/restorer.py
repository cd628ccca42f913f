"""``Restorer``: restore numpy images and image files with a trained or exported model.

    from ppmirnet import Restorer

    r = Restorer("output/mirnet_lite/best_model.pdparams")   # dygraph, network read off the weights
    clean = r(noisy)                                         # HxWx3 or HxW numpy -> same shape, dtype
    r.run("photos/", "denoised/")                            # -> the written PNG paths
    r = Restorer.from_pretrained("mirnetv2_sidd")            # the authors' weights, by name

Weights run on the fastest engine installed (on a CPU: OpenVINO, then
onnxruntime, Paddle Inference, dygraph; see :mod:`ppmirnet.inference.engines`),
exported once into a cache; ``engine="dygraph"`` runs the network itself.
The same object runs an exported model through Paddle Inference
(``Restorer(model_dir="inference/mirnet_lite")``), onnxruntime
(``Restorer(onnx_file="mirnet.onnx")``, no Paddle needed) or OpenVINO
(``engine="openvino"`` with either). Every runtime goes
through :mod:`ppmirnet.processing`: the same padding, tiling, clipping and
file handling as ``ppmirnet predict``, ``ppmirnet infer`` and serving.
"""

import os

from . import processing
from .errors import UserError

from .inference.engines import CHOICES, ENGINES as RUNTIMES

# The engines that run each kind of model source.
_SOURCE_ENGINES = {"weights": CHOICES, "model_dir": ("paddle-inference", "openvino"),
                   "onnx_file": ("onnx", "openvino")}


def _auto_device(runtime):
    """``(device, note)``: ``gpu`` when the runtime's library sees a GPU, else ``cpu``.

    ``note`` is the one line that says so.
    """
    if runtime == "openvino":
        return "cpu", "device: auto -> cpu (OpenVINO runs on the CPU here)"
    if runtime == "onnx":
        try:
            import onnxruntime
        except ImportError:
            return "cpu", "device: auto -> cpu (onnxruntime is not installed)"  # OnnxPredictor says what to install
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return "gpu", "device: auto -> gpu (onnxruntime has its CUDA provider)"
        return "cpu", "device: auto -> cpu (onnxruntime has no CUDA provider)"
    from .compat import import_paddle

    import_paddle()
    from .engine import env

    count = env.gpu_count()
    device = "gpu" if count > 0 else "cpu"
    return device, env.auto_device_note(device, count)


def load_dygraph_model(weights, config=None, log=print):
    """Build and load the network of ``weights`` (a ``.pdparams``, with or without extension).

    Weights written by this project record their network (see
    :mod:`ppmirnet.engine.checkpoint`), so no config is needed. ``config``
    (a path or a resolved config dict) is needed for older weights without
    that record; when both are there the record decides the network and a
    differing ``Arch`` is reported through ``log``. Returns ``(model, cfg)``
    (``cfg`` None without a config).
    """
    from .config import load_config
    from .engine.checkpoint import load_state, read_weights
    from .engine.dygraph import load_model
    from .modeling import build_model

    cfg = load_config(config) if isinstance(config, str) else config
    if cfg is not None:
        return load_model(cfg, weights, log=log), cfg
    file, state, arch = read_weights(weights)
    if arch is None:
        raise UserError(f"{file} does not record its network (weights saved by an older "
                        f"version): pass the config it was trained with (-c CONFIG, or "
                        f"Restorer(weights, config=CONFIG))")
    model = build_model(arch)
    load_state(model, state, file)
    model.eval()
    return model, None


class Restorer:
    """Restore images with MIRNet weights, a Paddle Inference export or an ONNX file.

    Give exactly one model source:

    Args:
        weights (str): ``.pdparams`` of a training run or converted official
            weights; runs on ``engine`` (exported once into the cache of
            :mod:`ppmirnet.inference.engines` unless dygraph). Needs
            ``config`` only for weights that do not record their network.
        model_dir (str): folder of ``tools/export_model.py`` /
            ``ppmirnet export`` (``inference.json`` or ``.pdmodel`` +
            ``.pdiparams``); runs with Paddle Inference (or OpenVINO, for a
            folder exported with ``--for_openvino``).
        onnx_file (str): an ONNX export; runs with onnxruntime (or OpenVINO).
        config (str or dict): YAML config (or resolved config) for ``weights``;
            its ``Global.auto_cast`` applies on GPU.
        engine (str): ``dygraph``, ``paddle-inference``, ``onnx``,
            ``openvino`` or ``auto``. Weights: default ``auto`` (on a CPU the
            fastest installed, on a GPU dygraph). ``model_dir`` and
            ``onnx_file``: default their own runtime; ``openvino`` reads
            either.
        runtime (str): the same as ``engine`` (its earlier name).
        device (str): ``auto`` (the default; None is the same), ``cpu`` or
            ``gpu``: ``auto`` is the GPU when the runtime sees one, else the
            CPU, and says which through ``log`` in one line.
        tile (int): restore images larger than ``tile`` x ``tile`` tile by tile
            (a multiple of 8), in bounded memory; None or 0: whole images.
        tile_overlap (int): overlap of neighbouring tiles, blended linearly.
        ensemble (bool): x8 self-ensemble (average over flips and rotations;
            8 times slower, a little more accurate).
        cpu_threads (int): CPU threads of the engine; None: with weights the
            process's share of the cores (or the config's
            ``Global.cpu_threads``), else 2.
        log (callable): receives one-line messages (model notes, per-file
            lines of :meth:`run`); None to stay silent.
        max_memory (str or int): memory budget (``"3G"``, ``"512M"``, bytes);
            without ``tile``, images whose predicted peak exceeds it are
            restored in the largest tiles that fit, and images that cannot fit
            are refused (:mod:`ppmirnet.memory`). None: half the memory
            available when the Restorer is made, at most 3 GiB (``PHOTO_LIMIT``).
        precision (str): ``fp32`` (the default) or ``bf16``: OpenVINO in
            bfloat16, on CPUs with bfloat16 units only; faster where the CPU
            has AMX, and the outputs move by a few grey levels
            (``docs/engines.md``).

    Raises:
        UserError: a missing or unreadable model, a bad option.
    """

    def __init__(self, weights=None, *, model_dir=None, onnx_file=None, config=None, engine=None,
                 runtime=None, device=None, tile=None, tile_overlap=32, ensemble=False, cpu_threads=None,
                 log=None, max_memory=None, precision="fp32"):
        sources = {"weights": weights, "model_dir": model_dir, "onnx_file": onnx_file}
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise UserError("give exactly one of weights, model_dir or onnx_file")
        if engine is not None and runtime is not None and engine != runtime:
            raise UserError(f"engine {engine!r} and runtime {runtime!r} differ: give one")
        source = given[0]
        runtime = engine or runtime or {"weights": "auto", "model_dir": "paddle-inference",
                                        "onnx_file": "onnx"}[source]
        if runtime not in CHOICES:
            raise UserError(f"engine must be one of {', '.join(CHOICES)}, got {runtime!r}")
        if runtime not in _SOURCE_ENGINES[source]:
            runs = [name for name, engines in _SOURCE_ENGINES.items() if runtime in engines]
            raise UserError(f"engine {runtime!r} runs {' or '.join(runs)}, but {source} was given")
        if config is not None and source != "weights":
            raise UserError("config applies to weights only")
        if device not in (None, "auto", "cpu", "gpu"):
            raise UserError(f"device must be 'auto', 'cpu' or 'gpu', got {device!r}")
        tile = tile or None
        if tile is not None and (tile < 0 or tile % 8):
            raise UserError(f"tile must be a positive multiple of 8, got {tile}")
        if tile is not None and not 0 <= tile_overlap < tile:
            raise UserError(f"tile_overlap must be in [0, tile), got {tile_overlap}")
        self.log = log or (lambda message: None)
        if runtime not in ("onnx", "openvino"):
            from .compat import import_paddle

            import_paddle()  # first, so that no later import shows its ccache warning
        if device in (None, "auto"):
            # Weights on "auto" run dygraph on a GPU: the device is Paddle's.
            device, note = _auto_device("dygraph" if runtime == "auto" else runtime)
            self.log(note)
        if runtime == "auto":
            from .inference.engines import choose_engine

            runtime = choose_engine(runtime, device)
        from .inference.engines import check_precision

        check_precision(runtime, precision)
        self.precision = precision
        self.runtime = self.engine = runtime
        self.device = device
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.ensemble = bool(ensemble)
        self.model = None
        self.config = None
        from . import memory

        # Made before the model loads: a share of what is available at start.
        self.budget = memory.make_budget(max_memory, self.device, "max_memory", memory.PHOTO_LIMIT)
        if runtime == "dygraph":
            self.runner = self._dygraph(weights, config, cpu_threads)
        else:
            from .inference.engines import build_runner, check_device, exported_model

            model = model_dir or onnx_file
            check_device(runtime, self.device)
            if weights is not None:
                from .config import load_config
                from .engine.env import default_cpu_threads

                cfg = load_config(config) if isinstance(config, str) else config
                if cpu_threads is None:
                    cpu_threads = cfg["Global"]["cpu_threads"] if cfg else None
                cpu_threads = cpu_threads or default_cpu_threads()
                model = exported_model(weights, runtime, cfg, log=self.log)
            self.runner = build_runner(runtime, model, self.device, cpu_threads or 2, precision)
            if weights is not None:
                from .engine.checkpoint import read_arch

                # The memory model sizes an export by the network it came from.
                self.runner.arch = cfg["Arch"] if cfg else read_arch(weights)
        if self.ensemble:
            from .engine.dygraph import SelfEnsemble

            self.runner = SelfEnsemble(self.runner)
        self.memory_model = memory.model_for(self.runner) if self.budget else None

    @classmethod
    def from_pretrained(cls, name, force_download=False, **kwargs):
        """A ``Restorer`` with the authors' weights ``name`` (see ``ppmirnet models``).

        The official checkpoint is downloaded and converted on first use
        (:func:`ppmirnet.zoo.resolve`), later uses read the cache; other
        keyword arguments are those of :class:`Restorer`.
        """
        from .zoo import resolve

        return cls(resolve(name, force=force_download, log=kwargs.get("log")), **kwargs)

    def _dygraph(self, weights, config, cpu_threads):
        from .config import amp_level, load_config
        from .engine.env import set_device
        from .engine.dygraph import DygraphRunner

        cfg = load_config(config) if isinstance(config, str) else config
        if cpu_threads is None and cfg is not None:
            cpu_threads = cfg["Global"]["cpu_threads"]
        set_device(self.device, cpu_threads)
        self.model, self.config = load_dygraph_model(weights, cfg, log=self.log)
        return DygraphRunner(self.model, amp_level(self.config) if self.config else None)

    @property
    def dual_pixel(self):
        """Whether the model restores dual-pixel pairs (the 6-channel MIRNet-v2)."""
        from .files import runner_channels

        return runner_channels(self.runner) == 6

    def __call__(self, image, right=None):
        """Restore one numpy image; returns an array of the same shape and dtype.

        Args:
            image (numpy.ndarray): HxWx3 RGB, or HxW / HxWx1 grayscale; uint8,
                uint16, or float with values in [0, 1]. For a dual-pixel
                model: the left view.
            right (numpy.ndarray): the right view, like ``image``; given
                exactly when the model is a dual-pixel one.
        """
        if self.dual_pixel != (right is not None):
            raise UserError("this model restores dual-pixel pairs: pass the right view too "
                            "(restorer(left, right=right))" if self.dual_pixel else
                            "this model takes single images: leave out right")
        tile, overlap = self.tile, self.tile_overlap
        if self.budget is not None and not tile and hasattr(image, "shape") and len(image.shape) >= 2:
            from . import memory

            h, w = image.shape[:2]
            channels = 6 if right is not None else 3
            stored = getattr(image, "nbytes", 0) // max(h * w, 1) * (2 if right is not None else 1)
            memory.check_minimum(h, w, self.budget, channels, stored, name="image")
            how = memory.plan(self.memory_model, self.budget, h, w, channels, overlap=overlap)
            if how.tile:
                tile, overlap = how.tile, min(overlap, how.tile // 4)
                self.log(f"image of {w}x{h} restored {how.describe()}")
        rgb, info = processing.from_array(image)
        if right is not None:
            rgb = processing.stack_views(rgb, processing.from_array(right, "right")[0])
        restored = processing.restore(self.runner, rgb, tile=tile, overlap=overlap)
        return processing.to_array(restored, info)

    def run(self, inputs, output_dir, right=None):
        """Restore image files into ``output_dir`` as ``<name>.png``; returns the written paths.

        Args:
            inputs (str or list[str]): image files and/or folders (searched
                non-recursively for png, jpg, bmp, tif, webp). For a
                dual-pixel model: the left views.
            output_dir (str): created if missing. Outputs keep each input's
                size, bit depth (8 or 16) and layout (grayscale, RGB, RGBA).
            right (str or list[str]): the right views of a dual-pixel model,
                one file or folder per entry of ``inputs`` (folders are paired
                by file name).
        """
        from .files import check_inputs_fit, restore_files

        if isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]
        if isinstance(right, (str, os.PathLike)):
            right = [right]
        if right is not None and len(right) != len(inputs):
            raise UserError(f"{len(inputs)} input(s) but {len(right)} right view(s)")
        files = [f for n, item in enumerate(inputs) for f in processing.list_inputs(
            os.fspath(item), None if right is None else os.fspath(right[n]))]
        if not files:
            raise UserError("no input images given")
        check_inputs_fit(self.runner, files, "right=")
        written = restore_files(self.runner, files, os.fspath(output_dir), tile=self.tile or 0,
                                tile_overlap=self.tile_overlap, budget=self.budget)
        for src, dst in zip(files, written):
            self.log(f"{src if right is None else src[0]} -> {dst}")
        return written

    def __repr__(self):
        return (f"Restorer(runtime={self.runtime!r}, device={self.device!r}, tile={self.tile}, "
                f"tile_overlap={self.tile_overlap}, ensemble={self.ensemble}"
                + (f", precision={self.precision!r})" if self.precision != "fp32" else ")"))

"""Paddle Inference predictor for an exported MIRNet.

:class:`PaddlePredictor` owns the ``paddle.inference.Config`` (CPU with or
without oneDNN, GPU, TensorRT with dynamic shapes) and is a *runner*: a
callable from a float32 NCHW batch to the restored batch, so it plugs into
:mod:`ppmirnet.processing` exactly as the dygraph model does.
"""

import contextlib
import json
import os
import sys

import numpy as np

from ..errors import MissingDependencyError, UserError
from ..export import INPUT_NAME, check_exported, find_program

PRECISIONS = ("fp32", "fp16")
GPU_INSTALL_HINT = (
    "install the paddlepaddle-gpu wheel matching your CUDA version in place of paddlepaddle "
    "(https://www.paddlepaddle.org.cn/install/quick)"
)
TRT_INSTALL_HINT = (
    "install a paddlepaddle-gpu wheel built with TensorRT (the 'trt' variants) and the matching "
    "TensorRT libraries (https://www.paddlepaddle.org.cn/inference/master/guides/install/download_lib.html)"
)


class PredictorOptions:
    """Settings of a :class:`PaddlePredictor`, checked on construction.

    Args:
        use_gpu (bool): run on an NVIDIA GPU (needs a GPU build of Paddle).
        gpu_id (int): GPU index.
        gpu_mem_mb (int): initial size of Paddle's GPU memory pool.
        enable_mkldnn (bool): use oneDNN kernels on CPU (about 5x faster for MIRNet).
        cpu_threads (int): threads of the CPU math library.
        mkldnn_cache_capacity (int): input shapes whose oneDNN primitives are
            cached; bounds memory when many image sizes pass through.
        use_tensorrt (bool): run the GPU graph through TensorRT.
        precision (str): ``fp32`` or ``fp16`` (GPU only).
        trt_min_size, trt_opt_size, trt_max_size (int): TensorRT's dynamic
            range of input height/width.
        max_batch_size (int): largest batch given to TensorRT.
        trt_cache_dir (str): where TensorRT engines and the shape-range file
            are kept between runs (default ``<model_dir>/_trt_cache``).
        shape_range_file (str): a shape-range file collected by Paddle
            (``collect_shape_range_info``); collected automatically over the
            min/opt/max shapes when it does not exist yet.
        trt_workspace_mb (int): TensorRT builder workspace.
        prefer_legacy (bool or None): load ``.pdmodel`` (True) or ``.json``
            (False) when both exist. None (the default) picks ``.pdmodel`` on
            CPU with oneDNN, the only program Paddle Inference runs with
            memory optimisation (see :func:`_memory_optim_supported`): about
            45% less peak memory and a little faster than the PIR program
            (``benchmarks/README.md``); ``.json`` otherwise.
    """

    def __init__(self, use_gpu=False, gpu_id=0, gpu_mem_mb=500, enable_mkldnn=True, cpu_threads=2,
                 mkldnn_cache_capacity=10, use_tensorrt=False, precision="fp32", trt_min_size=8,
                 trt_opt_size=256, trt_max_size=1024, max_batch_size=1, trt_cache_dir=None,
                 shape_range_file=None, trt_workspace_mb=1024, prefer_legacy=None):
        if precision not in PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if cpu_threads < 1:
            raise UserError(f"--cpu_threads must be >= 1, got {cpu_threads}")
        if max_batch_size < 1:
            raise UserError(f"--batch_size must be >= 1, got {max_batch_size}")
        if use_tensorrt:
            sizes = (trt_min_size, trt_opt_size, trt_max_size)
            if not trt_min_size <= trt_opt_size <= trt_max_size or min(sizes) < 8:
                raise UserError(
                    f"TensorRT sizes must satisfy 8 <= min <= opt <= max, got {sizes}"
                )
        self.use_gpu = use_gpu
        self.gpu_id = gpu_id
        self.gpu_mem_mb = gpu_mem_mb
        self.enable_mkldnn = enable_mkldnn
        self.cpu_threads = cpu_threads
        self.mkldnn_cache_capacity = mkldnn_cache_capacity
        self.use_tensorrt = use_tensorrt
        self.precision = precision
        self.trt_min_size = trt_min_size
        self.trt_opt_size = trt_opt_size
        self.trt_max_size = trt_max_size
        self.max_batch_size = max_batch_size
        self.trt_cache_dir = trt_cache_dir
        self.shape_range_file = shape_range_file
        self.trt_workspace_mb = trt_workspace_mb
        self.prefer_legacy = prefer_legacy

    @property
    def device(self):
        return "gpu" if self.use_gpu else "cpu"


def check_device_support(options):
    """Raise :class:`MissingDependencyError` if this Paddle build cannot honour ``options``.

    A CPU-only Paddle cannot run on a GPU, a Paddle without TensorRT cannot
    use it; the message says what to install.
    """
    import paddle

    if (options.use_gpu or options.use_tensorrt) and not paddle.is_compiled_with_cuda():
        what = "--use_tensorrt=True" if options.use_tensorrt else "--use_gpu=True"
        hint = TRT_INSTALL_HINT if options.use_tensorrt else GPU_INSTALL_HINT
        raise MissingDependencyError(
            f"{what} needs a GPU build of PaddlePaddle, but paddlepaddle {paddle.__version__} "
            f"here is CPU-only: {hint}"
        )
    if options.use_tensorrt and not options.use_gpu:
        raise UserError("--use_tensorrt=True needs --use_gpu=True (TensorRT runs on NVIDIA GPUs)")
    if options.precision == "fp16" and not options.use_gpu:
        raise UserError("--precision=fp16 needs --use_gpu=True: on CPU only fp32 is supported")
    if options.use_tensorrt and tuple(paddle.inference.get_trt_compile_version()) == (0, 0, 0):
        raise MissingDependencyError(
            f"--use_tensorrt=True needs a PaddlePaddle built with TensorRT, this one is not: {TRT_INSTALL_HINT}"
        )


def trt_size_range(min_size, opt_size, max_size, tile=0):
    """TensorRT's ``(min, opt, max)`` image side for the requested sizes and ``--tile``.

    With tiles no input is larger than the tile, so it is the maximum; the
    optimum and minimum are lowered to fit under it (``--tile 128`` with the
    default ``--trt_opt_size 256`` must not ask TensorRT for opt > max).
    """
    if tile:
        max_size = tile
    opt_size = min(opt_size, max_size)
    return min(min_size, opt_size), opt_size, max_size


@contextlib.contextmanager
def _current_gpu(gpu_id):
    """Make ``gpu:<gpu_id>`` Paddle's current device inside the block.

    ``paddle.tensorrt.convert`` builds its engines on the current device
    (``gpu:0`` unless told otherwise).
    """
    import paddle

    previous = paddle.get_device()
    paddle.set_device(f"gpu:{gpu_id}")
    try:
        yield
    finally:
        paddle.set_device(previous)


def _trt_shapes(options, channels=3):
    n = options.max_batch_size
    return {
        "min": [1, channels, options.trt_min_size, options.trt_min_size],
        "opt": [n, channels, options.trt_opt_size, options.trt_opt_size],
        "max": [n, channels, options.trt_max_size, options.trt_max_size],
    }


def _read_program_desc(path):
    """The parsed ``.pdmodel`` (a ``ProgramDesc``), or None when it does not parse as one."""
    from google.protobuf.message import DecodeError
    from paddle.base.proto import framework_pb2

    with open(path, "rb") as f:
        data = f.read()
    try:
        return framework_pb2.ProgramDesc.FromString(data)
    except DecodeError:
        return None


def program_input_channels(program, name="x", desc=None):
    """The channels of the exported program's input ``name``: 3, or 6 for the dual-pixel MIRNet-v2.

    Read from the program file (or ``desc``, the ``.pdmodel`` already parsed
    by :func:`check_program_file`), because Paddle Inference's input handle
    reports no shape before one is set and TensorRT's shape ranges are
    needed before the predictor exists. None when the file does not say.
    """
    if program.endswith(".pdmodel"):
        if desc is None:
            try:
                desc = _read_program_desc(program)
            except OSError:
                return None
        for var in desc.blocks[0].vars if desc is not None and desc.blocks else ():
            if var.name == name:
                # The tensor field is ``dense_tensor`` in Paddle 3, ``lod_tensor`` in 2.6.
                for _, value in var.type.ListFields():
                    dims = getattr(getattr(value, "tensor", None), "dims", None)
                    if dims is not None and len(dims) == 4:
                        return int(dims[1])
        return None
    try:
        with open(program) as f:
            tree = json.load(f)
    except (OSError, ValueError):
        return None
    return _pir_data_channels(tree, name)


def _pir_data_channels(node, name):
    """Channels of the PIR ``data`` op named ``name``: its attributes are ``{"N": key, "AT": {"D": value}}``."""
    if isinstance(node, dict):
        attrs = node.get("A")
        if isinstance(attrs, list) and all(isinstance(a, dict) for a in attrs):
            found = {a.get("N"): a.get("AT", {}).get("D") for a in attrs if "N" in a}
            shape = found.get("shape")
            if found.get("name") == name and isinstance(shape, list) and len(shape) == 4:
                return int(shape[1])
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        got = _pir_data_channels(child, name)
        if got is not None:
            return got
    return None


def _memory_optim_supported(program):
    """Whether ``enable_memory_optim`` can be set for ``program``.

    Paddle Inference fails to create a predictor for a PIR (``.json``)
    program with it (a ``ValueError`` from ``pass_result_info.h``;
    ``tests/test_inference.py`` notices when a Paddle release accepts it, and
    this and the default program choice can change). Without it, PIR with oneDNN keeps
    many more intermediate tensors alive (default model at 256x256: 4.1 GB
    against 2.3 GB for the ``.pdmodel`` with it), hence the default choice
    of the ``.pdmodel`` on CPU with oneDNN.
    """
    return program.endswith(".pdmodel")


def build_config(program, params, options, collect_shape_range_to=None):
    """Build the ``paddle.inference.Config`` for ``options``.

    For TensorRT, ``program`` is either a PIR program already converted by
    ``paddle.tensorrt.convert`` (``.json``: it only needs the GPU) or a
    legacy one (``.pdmodel``), which gets Paddle's TensorRT subgraph engine
    with the collected shape ranges. With ``collect_shape_range_to`` the
    config runs without TensorRT and records the shape of every tensor
    into that file.
    """
    from paddle import inference

    config = inference.Config(program, params)
    config.switch_ir_optim(True)
    if _memory_optim_supported(program):
        config.enable_memory_optim()
    config.disable_glog_info()
    if options.use_gpu:
        precision = inference.PrecisionType.Half if options.precision == "fp16" else inference.PrecisionType.Float32
        if options.use_tensorrt or collect_shape_range_to:
            # TensorRT sets its own precision (in the engine or the converted program).
            config.enable_use_gpu(options.gpu_mem_mb, options.gpu_id)
        else:
            config.enable_use_gpu(options.gpu_mem_mb, options.gpu_id, precision)
        if collect_shape_range_to:
            config.collect_shape_range_info(collect_shape_range_to)
        elif options.use_tensorrt and program.endswith(".pdmodel"):
            cache_dir = options.trt_cache_dir
            os.makedirs(cache_dir, exist_ok=True)
            config.set_optim_cache_dir(cache_dir)
            config.enable_tensorrt_engine(
                workspace_size=options.trt_workspace_mb << 20,
                max_batch_size=options.max_batch_size,
                min_subgraph_size=3,
                precision_mode=precision,
                use_static=True,
                use_calib_mode=False,
            )
            config.enable_tuned_tensorrt_dynamic_shape(options.shape_range_file, True)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(options.cpu_threads)
        if options.enable_mkldnn:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(options.mkldnn_cache_capacity)
        else:
            config.disable_mkldnn()
    return config


@contextlib.contextmanager
def silenced_native_stdout():
    """Discard what native code writes to file descriptor 1 inside the block.

    With a PIR (``.json``) program, Paddle's oneDNN reduce-mean dispatch
    prints a debugging line (``ReduceMeanCheckIfOneDNNSupport``) to the C++
    stdout on every run (``tests/test_inference.py`` notices when it stops);
    this keeps the tool's stdout parseable.
    Python-level ``print`` is unaffected outside the block.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def check_program_file(path):
    """Refuse a ``.pdmodel`` that is not a Paddle program before Paddle reads it.

    Paddle's native loader crashes the process (segmentation fault) on some
    files that parse as protocol buffers without being programs (a
    ``.pdiparams`` or an ONNX model in its place); the Python parser of the
    same format tells them apart safely. Returns the parsed program (None
    for a ``.json`` one).
    """
    if not path.endswith(".pdmodel"):
        return None
    program = _read_program_desc(path)
    ops = {op.type for op in program.blocks[0].ops} if program and program.blocks else set()
    if not {"feed", "fetch"} <= ops:
        raise UserError(f"{path} is not a Paddle inference program (damaged, or another "
                        f"file under this name); export it again with tools/export_model.py")
    return program


class PaddlePredictor:
    """An exported MIRNet or MIRNet-v2 run by Paddle Inference; call it on a float32 NCHW batch.

    Loads ``inference.json`` (Paddle 3) or ``inference.pdmodel`` (Paddle 2.6)
    with ``inference.pdiparams`` from ``model_dir``. Any batch size and any
    height/width work (the exported program reflect-pads to its network's
    multiple and crops back itself).

    Args:
        model_dir (str): folder written by ``tools/export_model.py``.
        options (PredictorOptions): device and engine settings.
        quiet (bool): drop debugging lines Paddle's native code prints to
            stdout while running (use in command-line tools).
    """

    def __init__(self, model_dir, options=None, quiet=False):
        self.options = options or PredictorOptions()
        self.model_dir = model_dir
        legacy = self.options.prefer_legacy
        if legacy is None:
            legacy = not self.options.use_gpu and self.options.enable_mkldnn
        self.program, self.params = find_program(model_dir, prefer_legacy=legacy)
        # What this Paddle build cannot do is said before the files are read.
        check_device_support(self.options)
        # Paddle's own loader blames the program for a damaged parameter file.
        check_exported(self.program, self.params, parse_pdmodel=False)
        desc = check_program_file(self.program)
        # 3, or 6 for the dual-pixel MIRNet-v2; TensorRT's shape ranges need it.
        self.in_channels = program_input_channels(self.program, INPUT_NAME, desc) or 3
        self.quiet = quiet
        if self.options.use_tensorrt:
            self._prepare_tensorrt()
        self.config = build_config(self.program, self.params, self.options)
        self._predictor = self._create(self.config)
        name = self._predictor.get_input_names()[0]
        self._input = self._predictor.get_input_handle(name)
        self._output_name = self._predictor.get_output_names()[0]

    def _create(self, config):
        from paddle import inference

        try:
            return inference.create_predictor(config)
        except (RuntimeError, ValueError, OSError, IndexError) as err:
            raise UserError(f"Paddle Inference cannot load {self.program}: {str(err).strip().splitlines()[-1]}") from err

    def _prepare_tensorrt(self):
        """Set up TensorRT's dynamic shapes and engine cache in ``trt_cache_dir``.

        A PIR program (``.json``) is converted once by Paddle 3's
        ``paddle.tensorrt.convert`` over the min/opt/max input shapes; the
        converted program (TensorRT engines inside) is kept in the cache
        folder, keyed by precision, batch and sizes, and loaded on later
        runs. A legacy program (``.pdmodel``) uses the subgraph engine of
        ``Config.enable_tensorrt_engine``: the shape range of every tensor is
        collected once by running min/opt/max without TensorRT, and the
        serialized engines are cached in the same folder.
        """
        opts = self.options
        if opts.trt_cache_dir is None:
            opts.trt_cache_dir = os.path.join(self.model_dir, "_trt_cache")
        os.makedirs(opts.trt_cache_dir, exist_ok=True)
        key = f"{opts.precision}_b{opts.max_batch_size}_{opts.trt_min_size}_{opts.trt_opt_size}_{opts.trt_max_size}"
        if self.program.endswith(".json"):
            prefix = os.path.join(opts.trt_cache_dir, f"trt_{key}")
            if not os.path.isfile(prefix + ".json"):
                self._convert_pir_tensorrt(prefix)
            self.program, self.params = prefix + ".json", prefix + ".pdiparams"
            return
        if opts.shape_range_file is None:
            opts.shape_range_file = os.path.join(opts.trt_cache_dir, f"shape_range_{key}.pbtxt")
        if os.path.isfile(opts.shape_range_file):
            return
        tmp = opts.shape_range_file + ".collecting"
        config = build_config(self.program, self.params, opts, collect_shape_range_to=tmp)
        predictor = self._create(config)
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        for shape in _trt_shapes(opts, self.in_channels).values():
            handle.reshape(shape)
            handle.copy_from_cpu(np.zeros(shape, dtype=np.float32))
            predictor.run()
        del predictor
        os.replace(tmp, opts.shape_range_file)

    def _convert_pir_tensorrt(self, prefix):
        try:
            from paddle.tensorrt.export import Input, PrecisionMode, TensorRTConfig, convert
        except ImportError as err:
            raise MissingDependencyError(f"this PaddlePaddle has no paddle.tensorrt: {TRT_INSTALL_HINT}") from err
        opts = self.options
        shapes = _trt_shapes(opts, self.in_channels)
        spec = Input(min_input_shape=shapes["min"], optim_input_shape=shapes["opt"],
                     max_input_shape=shapes["max"], name=INPUT_NAME)
        # Written under a temporary prefix, renamed when complete: a crash
        # never leaves a half-converted model that later runs would load.
        tmp = f"{prefix}.converting"
        config = TensorRTConfig(inputs=[spec], save_model_dir=tmp,
                                precision_mode=PrecisionMode.FP16 if opts.precision == "fp16" else PrecisionMode.FP32,
                                workspace_size=opts.trt_workspace_mb << 20)
        with _current_gpu(opts.gpu_id):
            convert(os.path.splitext(self.program)[0], config)
        os.replace(tmp + ".pdiparams", prefix + ".pdiparams")
        os.replace(tmp + ".json", prefix + ".json")

    @property
    def max_input_size(self):
        """The largest padded height/width this predictor runs (TensorRT's range), or None."""
        return self.options.trt_max_size if self.options.use_tensorrt else None

    def __call__(self, batch):
        """Restore a float32 NCHW batch in [0, 1]; returns a new N x 3 x H x W array."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != self.in_channels:
            raise UserError(f"expected a Nx{self.in_channels}xHxW batch, got shape {batch.shape}")
        self._input.reshape(batch.shape)
        self._input.copy_from_cpu(batch)
        try:
            if self.quiet:
                with silenced_native_stdout():
                    self._predictor.run()
            else:
                self._predictor.run()
        except (RuntimeError, ValueError) as err:
            last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise UserError(f"Paddle Inference cannot run a batch of shape {batch.shape}: {last}") from None
        return self._predictor.get_output_handle(self._output_name).copy_to_cpu()

    def describe(self):
        """Engine settings as a flat dict, for logs and the benchmark report."""
        o = self.options
        return {
            "program": os.path.basename(self.program),
            "runtime": "paddle_inference",
            "runtime_device": o.device,
            "ir_optim": True,
            "enable_memory_optim": _memory_optim_supported(self.program),
            "enable_tensorrt": o.use_tensorrt,
            "enable_mkldnn": o.enable_mkldnn and not o.use_gpu,
            "cpu_math_library_num_threads": o.cpu_threads,
            "precision": o.precision,
        }

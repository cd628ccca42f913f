"""Memory budgets and automatic tiling: restore whole images where they fit, tiles where not.

Every front end (``ppmirnet predict``, ``deploy/*/infer.py``, :class:`Restorer`,
serving, evaluation and validation during training) restores under a
*budget*: ``--max_memory SIZE`` (``Restorer(max_memory=...)``,
``Global.max_memory``, serving's ``max_memory``), by default
:data:`DEFAULT_SHARE` of the memory available when the budget is made
(``MemAvailable`` of ``/proc/meminfo``, or what the cgroup limit leaves if
lower; on a GPU the free device memory bounds the network's part).

The peak memory of restoring an H x W image (N at a time) is predicted as

    engine:  fixed + per_pixel * N * H' * W'      (H', W': padded to the network's multiple)
    arrays:  N * H * W * (4 * C_in + ARRAY_BYTES_PER_PIXEL)   (float32 input, output, blend weights)

with ``fixed`` and ``per_pixel`` from :mod:`ppmirnet.memory_table`, fitted
per (network, engine, device) by ``benchmarks/memory_model.py`` from peak-RSS
measurements, and scaled to other widths and depths of the same network:

    per_pixel = per_pixel_per_width * width + per_pixel
    fixed     = fixed + fixed_per_param_byte * parameter bytes

where ``width`` (:func:`feature_width`) is the network's feature channels per
input pixel summed over its scales. :func:`plan` restores a whole image when
its predicted peak fits the budget (the output is then exactly that of an
untiled run), else in the largest tiles (a multiple of the network's pad
multiple) whose peak fits, and refuses, before any work and with the
numbers, an image whose float32 input and output and stored pixels alone
exceed the budget.

Tile seams: tiles overlap by 32 pixels (the default) and are blended
linearly, which is not exactly the whole-image result, because each tile's
borders are reflect-padded instead of seeing their neighbours. Measured with
``benchmarks/memory_model.py --seams`` (random weights, tiles of 128 on a
256x256 photo crop, AMD EPYC, 2026-12-07), tiled against whole differ by at
most 0.030 (MIRNet, PSNR 56.2 dB between the two) and 0.032 (MIRNet-v2,
50.6 dB) in [0, 1]: :data:`SEAM_TOLERANCE`, and ``docs/memory.md``.
"""

import inspect
import math
import os
import re

from .errors import UserError

# Share of the available memory a run may use by default: the rest is left
# to the system and other programs, and covers the model's error.
DEFAULT_SHARE = 0.5

# Default ceiling of the front ends that restore photos (predict, infer, Restorer,
# the demo). Beyond tiles of about 512 pixels a larger tile only saves overlap
# (with the default overlap of 32, tiles of 512 compute 14% more pixels than the
# image has, tiles of 1968 3%), while the memory it takes is the rest of the
# machine's. Under 3 GiB both default networks restore a 12 MP photo in tiles of
# about 470 to 860 on the CPU engines, by network and engine (docs/memory.md).
# Evaluation and validation keep the share alone: whole images give the
# protocol's scores.
PHOTO_LIMIT = 3 * 2 ** 30
# With the ceiling, a process that already holds much (an application embedding
# Restorer) still gets this much above what it holds.
MIN_ROOM = 2 ** 30

# Bytes per pixel, besides the float32 input (4 * C_in), that restoring a
# large image in tiles keeps alive at its peak (ppmirnet.processing.run_tiled
# under ppmirnet.files.restore_files): the float32 output (12) and the blend
# weights (4), plus 4 for the tiles' own arrays and the PNG being encoded.
# The other stages need less: reading (stored pixels + 2 float32 copies),
# writing (the output, one clipped float32 copy and the 8- or 16-bit pixels).
ARRAY_BYTES_PER_PIXEL = 20

# Tiles smaller than this are not tried: the overlaps would cost more than the tiles.
MIN_TILE = 64

# Largest difference (max abs, values in [0, 1]) measured between a tiled and a
# whole-image output with the default overlap of 32 pixels: 0.030 for MIRNet and
# 0.032 for MIRNet-v2 (PSNR 56.2 and 50.6 dB between the two), tiles of 128 on a
# 256x256 photo crop, random weights (docs/memory.md). Rounded up.
SEAM_TOLERANCE = 0.035

_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b)?\s*", re.IGNORECASE)


def parse_size(value, name="--max_memory"):
    """Bytes of a memory size: ``3G``, ``512M``, ``1.5GB``, ``2GiB``, ``1000000`` (bytes).

    Units are binary (``1G`` = 2**30 bytes). None stays None. A value that
    is not a positive size is a :class:`UserError` naming ``name``.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        match = None
    elif isinstance(value, (int, float)):
        match = _SIZE.fullmatch(repr(value)) if value > 0 and math.isfinite(value) else None
    else:
        match = _SIZE.fullmatch(str(value))
    if match and (match.group(3) is None or match.group(3).lower() == "b" or match.group(2)):
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
        if size > 0:
            return size
    raise UserError(f"{name}: {value!r} is not a memory size (e.g. 3G, 512M, 1.5GB or a "
                    f"number of bytes)")


def format_size(nbytes):
    """``nbytes`` for people: ``3.0 GiB``, ``512 MiB``."""
    if nbytes >= 2 ** 30:
        return f"{nbytes / 2 ** 30:.1f} GiB"
    return f"{nbytes / 2 ** 20:.0f} MiB"


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_host_memory():
    """Bytes this process can still use: ``MemAvailable``, or the cgroup's headroom if lower."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:  # not Linux
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2 ** 60:
            headroom = max(limit - usage, 0)
            available = headroom if available is None else min(available, headroom)
    return available


def free_device_memory():
    """Free bytes on the current GPU (Paddle's view), or None when there is none."""
    try:
        import paddle

        if not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0:
            return None
        free, _ = paddle.device.cuda.mem_get_info()
        return int(free)
    except Exception:  # no CUDA runtime, an old Paddle: no device budget
        return None


class Budget:
    """How much memory a run may use.

    Attributes:
        host (int): bytes of RAM for the whole process (arrays and, on CPU, the engine).
        device (int or None): bytes of GPU memory for the engine; None on CPU.
        source (str): where the numbers come from, for messages.
    """

    def __init__(self, host, device=None, source="--max_memory"):
        self.host = host
        self.device = device
        self.source = source

    def engine_limit(self, on_gpu):
        return self.device if on_gpu and self.device is not None else self.host

    def __repr__(self):
        device = "" if self.device is None else f", device={format_size(self.device)}"
        return f"Budget(host={format_size(self.host)}{device}, {self.source})"


def make_budget(max_memory=None, device="cpu", name="--max_memory", limit=None):
    """The :class:`Budget` of a run: ``max_memory`` (a size, see :func:`parse_size`) or the default.

    The default is :data:`DEFAULT_SHARE` of the memory available now (on a
    GPU also of its free memory), and on the host at most ``limit`` bytes
    (:data:`PHOTO_LIMIT` for the front ends restoring photos) or what the
    process holds plus :data:`MIN_ROOM`, if more. ``max_memory`` applies to
    the host and, on a GPU, to the device as well.
    """
    if isinstance(max_memory, Budget):
        return max_memory
    size = parse_size(max_memory, name)
    on_gpu = str(device).startswith("gpu")
    if size is not None:
        return Budget(size, size if on_gpu else None, name)
    available = available_host_memory()
    host = int(DEFAULT_SHARE * available) if available else None
    free = free_device_memory() if on_gpu else None
    gpu = int(DEFAULT_SHARE * free) if free else None
    if host is None:
        return None  # nothing known: no automatic tiling
    source = f"{DEFAULT_SHARE:.0%} of the memory available at start"
    ceiling = None if limit is None else max(limit, current_rss() + MIN_ROOM)
    if ceiling is not None and host > ceiling:
        host = ceiling
        source += f", at most {format_size(host)}"
    return Budget(host, gpu, f"{source}; {name} sets it")


# ------------------------------------------------------------------ the model


def arch_of(arch):
    """``arch`` (an ``Arch`` section with ``name``) with the network's defaults filled in."""
    from .modeling import MODELS

    params = inspect.signature(MODELS[arch["name"]].__init__).parameters
    full = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    full.update(arch)
    return full


def feature_width(arch):
    """Feature channels per input pixel summed over the scales of a full ``arch``.

    Level i of MIRNet holds ``n_feat * stride**i`` channels on ``1 / stride**(2i)``
    of the pixels; level i of MIRNet-v2 ``n_feat * chan_factor**i`` on ``1 / 4**i``.
    """
    if arch["name"] == "MIRNet":
        return arch["n_feat"] * sum(arch["stride"] ** -i for i in range(arch["height"]))
    return arch["n_feat"] * sum((arch["chan_factor"] / 4.0) ** i for i in range(arch["height"]))


def pad_multiple(arch):
    """The multiple the network pads its input to (8 or more for MIRNet, 4 for MIRNet-v2)."""
    if arch is None:
        return 8
    if arch["name"] == "MIRNet":
        return max(8, 2 ** (arch.get("height", 3) - 1))
    return 4


def _table():
    from . import memory_table

    return memory_table.COEFFICIENTS


# GPU rows are not measured (no GPU build of Paddle where the table was fitted):
# the CPU dygraph / Paddle Inference per-pixel cost, which a GPU run of the same
# kernels does not exceed much, and a CUDA context of about 1 GiB. Estimates.
GPU_CONTEXT_BYTES = 2 ** 30


class MemoryModel:
    """Predicted peak memory of one network on one engine and device.

    Args:
        arch (dict or None): the network's ``Arch`` section (``name`` + arguments);
            None when unknown (an exported program): the costliest default
            network of the table is assumed.
        engine (str): ``dygraph``, ``paddle-inference``, ``onnx`` or ``openvino``.
        device (str): ``cpu`` or ``gpu``.
        param_bytes (int): the network's parameter bytes (default: from ``arch``).
        resident (int or None): bytes the running process holds with the engine
            already loaded (:func:`current_rss`). The fixed part is then this plus
            the engine's measured overhead, instead of the table's fresh process,
            whose libraries' share differs between machines and library builds.
    """

    def __init__(self, arch, engine, device="cpu", param_bytes=None, resident=None):
        table = _table()
        self.engine = engine
        self.device = "gpu" if str(device).startswith("gpu") else "cpu"
        self.estimate = self.device == "gpu"
        # An engine the table does not know yet: the costliest measured engine.
        rows = {k: v for k, v in table.items() if k.split("/")[1] == engine} or dict(table)
        key = f"{arch['name']}/{engine}/cpu" if arch is not None else None
        if arch is not None and set(arch) == {"name"} and key in rows:
            # Only the network's name (serving): its default width and depth, no Paddle needed.
            row = rows[key]
            self.arch = dict(arch)
            param_bytes = row["default_param_bytes"]
            self.per_pixel = row["per_pixel_per_width"] * row["default_width"] + row["per_pixel"]
            self.fixed = _fixed(row, param_bytes, resident)
        elif arch is not None and key in rows:
            row = rows[key]
            self.arch = arch_of(arch)
            width = feature_width(self.arch)
            if param_bytes is None:
                param_bytes = _param_bytes(self.arch)
            self.per_pixel = row["per_pixel_per_width"] * width + row["per_pixel"]
            self.fixed = _fixed(row, param_bytes, resident)
        else:
            # Unknown network (an exported program): the costliest default network of the table.
            self.arch = None
            self.per_pixel, self.fixed = max(
                (row["per_pixel_per_width"] * row["default_width"] + row["per_pixel"],
                 _fixed(row, row["default_param_bytes"], resident))
                for row in rows.values())
        # A line fitted on two widths may go below the network's own input and output
        # for a far narrower one: never predict less than those.
        self.per_pixel = max(self.per_pixel, 4 * (3 + 3) * 2)
        if self.estimate:
            self.fixed = GPU_CONTEXT_BYTES + (param_bytes or 0)
        self.multiple = pad_multiple(self.arch)

    @classmethod
    def linear(cls, fixed, per_pixel, multiple=8, engine="custom", device="cpu"):
        """A model of given coefficients (bytes, bytes per pixel), e.g. for a runner of one's own."""
        model = cls.__new__(cls)
        model.engine, model.device, model.estimate = engine, device, False
        model.arch, model.fixed, model.per_pixel, model.multiple = None, fixed, per_pixel, multiple
        return model

    def engine_peak(self, height, width, batch=1):
        """Predicted peak bytes of the engine on a ``batch`` of ``height`` x ``width`` images."""
        m = self.multiple
        padded = (-(-height // m) * m) * (-(-width // m) * m)
        return int(self.fixed + self.per_pixel * batch * padded)

    def __repr__(self):
        return (f"MemoryModel({self.arch['name'] if self.arch else 'unknown network'}, {self.engine}, "
                f"{self.device}: {format_size(self.fixed)} + {self.per_pixel / 1024:.1f} KiB/pixel"
                f"{', estimate' if self.estimate else ''})")


def _fixed(row, param_bytes, resident):
    """The fixed part of a table row: a fresh process's, or ``resident`` plus the engine's overhead."""
    if resident is not None and "overhead" in row:
        return resident + row["overhead"] + row["overhead_per_param_byte"] * param_bytes
    fresh = row["fixed"] + row["fixed_per_param_byte"] * param_bytes
    # A row without a measured overhead: never below what the process already holds.
    return max(fresh, resident or 0)


def _param_bytes(arch):
    """float32 bytes of the parameters of ``arch``: the network is built to count them."""
    from .modeling import build_model

    return sum(4 * int(math.prod(p.shape)) for p in build_model(arch).parameters())


def array_bytes(height, width, channels=3, batch=1):
    """Bytes the arrays of restoring ``batch`` ``height`` x ``width`` images keep at their peak."""
    return batch * height * width * (4 * channels + ARRAY_BYTES_PER_PIXEL)


def minimum_bytes(height, width, channels=3, stored_bytes_per_pixel=3, batch=1):
    """Bytes an image needs at the least: its float32 input and output, and its stored pixels."""
    return batch * height * width * (4 * channels + 4 * 3 + stored_bytes_per_pixel)


class Plan:
    """How to restore one image: ``tile`` 0 (whole) or a tile size, and the predicted peaks."""

    def __init__(self, tile, whole_peak, peak, budget):
        self.tile = tile
        self.whole_peak = whole_peak
        self.peak = peak
        self.budget = budget

    def describe(self):
        return (f"in tiles of {self.tile} (a whole image would need about {format_size(self.whole_peak)}, "
                f"over the budget of {format_size(self.budget)})")


def check_minimum(height, width, budget, channels=3, stored_bytes_per_pixel=3, name="image", batch=1):
    """Refuse (:class:`UserError`, with the numbers) an image that cannot fit ``budget`` at all."""
    if budget is None:
        return
    need = minimum_bytes(height, width, channels, stored_bytes_per_pixel, batch)
    if need > budget.host:
        raise UserError(f"{name}: {width}x{height} needs at least {format_size(need)} for its float32 "
                        f"input and output and its pixels, more than the memory budget of "
                        f"{format_size(budget.host)} ({budget.source}); not restored")


def plan(model, budget, height, width, channels=3, batch=1, overlap=32, name="image"):
    """The :class:`Plan` for a ``batch`` of ``height`` x ``width`` images under ``budget``.

    Whole images when the predicted peak fits (or when there is no budget or
    model), else the largest tile that fits; an image that cannot fit even
    in the smallest tile is a :class:`UserError` with the numbers.
    """
    if budget is None or model is None:
        return Plan(0, None, None, None)
    check_minimum(height, width, budget, channels, name=name, batch=batch)
    on_gpu = model.device == "gpu"
    arrays = array_bytes(height, width, channels, batch)

    def fits(h, w):
        engine = model.engine_peak(h, w, batch)
        if on_gpu:
            return engine <= budget.engine_limit(True) and arrays <= budget.host, engine
        return engine + arrays <= budget.host, engine + arrays

    ok, whole = fits(height, width)
    limit = budget.engine_limit(on_gpu)
    if ok:
        return Plan(0, whole, whole, limit)
    step = 8 * model.multiple // math.gcd(8, model.multiple)
    smallest = max(MIN_TILE, (2 * overlap // step + 1) * step)
    # The peak grows with the tile: bisect for the largest multiple of ``step`` that fits.
    low, high = -(-smallest // step), (max(height, width) - 1) // step
    best = None
    while low <= high:
        k = (low + high) // 2
        ok, peak = fits(min(k * step, height), min(k * step, width))
        if ok:
            best, low = (k * step, peak), k + 1
        else:
            high = k - 1
    if best is not None:
        return Plan(best[0], whole, best[1], limit)
    _, peak = fits(smallest, smallest)
    raise UserError(f"{name}: {width}x{height} does not fit the memory budget of {format_size(limit)} "
                    f"({budget.source}) even in tiles of {smallest} (about {format_size(peak)} "
                    f"with {model!r}); not restored")


def current_rss():
    """Resident memory of this process now, in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def runner_arch(runner):
    """The ``Arch`` section of the network a runner runs, or None when it does not say."""
    inner = runner
    for _ in range(4):  # SelfEnsemble and other wrappers keep the runner they wrap
        arch = getattr(inner, "arch", None)
        if isinstance(arch, dict) and "name" in arch:
            return arch
        model = getattr(inner, "model", None)
        if model is not None and isinstance(getattr(model, "arch", None), dict):
            from .modeling import arch_section

            return arch_section(model)
        inner = getattr(inner, "runner", None)
        if inner is None:
            break
    return None


ENGINE_OF = {"DygraphRunner": "dygraph", "PaddlePredictor": "paddle-inference", "OnnxPredictor": "onnx"}


def runner_engine(runner):
    """``(engine, device)`` of a runner: its ``engine`` attribute, else its class."""
    inner = runner
    for _ in range(4):
        name = type(inner).__name__
        engine = (getattr(inner, "engine", None) or ENGINE_OF.get(name)
                  or ("openvino" if "openvino" in name.lower() else None))
        if engine:
            device = getattr(inner, "device", None)
            if device is None and hasattr(inner, "describe"):
                device = inner.describe().get("runtime_device")
            if device is None and engine == "dygraph":
                import paddle

                device = paddle.device.get_device()
            return engine, "gpu" if str(device or "cpu").startswith("gpu") else "cpu"
        inner = getattr(inner, "runner", None)
        if inner is None:
            break
    return None, "cpu"


def model_for(runner):
    """The :class:`MemoryModel` of a runner, or None for a runner of no known engine (a test's fake)."""
    if getattr(runner, "memory_model", None) is not None:
        return runner.memory_model
    engine, device = runner_engine(runner)
    if engine is None:
        return None
    params = None
    inner = runner
    while inner is not None and params is None:
        model = getattr(inner, "model", None)
        if model is not None and hasattr(model, "parameters"):
            params = sum(4 * int(math.prod(p.shape)) for p in model.parameters())
        inner = getattr(inner, "runner", None)
    # On a CPU the engine's memory adds to what this process already holds
    # (libraries, weights, and in training the model and its optimizer).
    resident = current_rss() if device == "cpu" else None
    return MemoryModel(runner_arch(runner), engine, device, params, resident=resident or None)

"""Device, distributed set-up and seeding for the training and evaluation tools."""

import os
import random

import numpy as np
import paddle

from .. import compat
from ..errors import UserError


def world_size():
    """Number of training processes (``paddle.distributed.launch`` sets it)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank():
    """This process's rank (0 when not launched distributed)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def gpu_count():
    """GPUs this PaddlePaddle build can use (0 for a CPU-only build)."""
    return paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0


def auto_device_note(device, count):
    """The one line that says what ``auto`` chose: ``device: auto -> cpu (...)``."""
    if device == "cpu":
        return "device: auto -> cpu (this PaddlePaddle sees no GPU)"
    return f"device: auto -> {device} ({count} GPU(s) visible)"


def resolve_device(device, environ=None, count=None):
    """The Paddle device for ``Global.device`` (``auto``, ``cpu``, ``gpu`` or ``gpu:N``).

    ``auto`` is the GPU when this PaddlePaddle sees one, else the CPU
    (``count``: the visible GPUs, :func:`gpu_count` when None). Under
    ``paddle.distributed.launch`` each process gets its card from the
    launcher (``FLAGS_selected_gpus``, an index among the visible cards),
    which replaces any ``N`` of the config: one config serves every rank.
    """
    environ = os.environ if environ is None else environ
    if device == "auto":
        device = "gpu" if (gpu_count() if count is None else count) > 0 else "cpu"
    if device == "cpu":
        return "cpu"
    selected = environ.get("FLAGS_selected_gpus")
    if "PADDLE_TRAINER_ID" in environ and selected:
        return f"gpu:{int(selected.split(',')[0])}"
    return device


def default_cpu_threads(environ=None, cores=None):
    """This process's share of the cores it may run on, for ``Global.cpu_threads: null``.

    The cores are shared among the training processes of the machine
    (``paddle.distributed.launch`` on CPU starts one per rank), at least one
    each. ``OMP_NUM_THREADS`` cannot say it: importing Paddle sets it to 1
    when it is unset.
    """
    environ = os.environ if environ is None else environ
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local = int(environ.get("PADDLE_LOCAL_SIZE") or environ.get("PADDLE_TRAINERS_NUM") or 1)
    return max(1, cores // max(local, 1))


def set_device(device, cpu_threads=None, log=print):
    """Select ``auto``, ``cpu``, ``gpu`` or ``gpu:N`` (see :func:`resolve_device`); returns it.

    ``auto`` reports its choice in one line through ``log`` (None: silent). A
    GPU request without a usable GPU is a :class:`UserError`. On CPU the math
    library gets ``cpu_threads`` threads (None: :func:`default_cpu_threads`).
    """
    count = gpu_count()
    requested = device
    device = resolve_device(device, count=count)
    if requested == "auto" and log is not None and rank() == 0:
        log(auto_device_note(device, count))
    if device == "cpu":
        compat.set_cpu_math_threads(cpu_threads or default_cpu_threads())
    if device != "cpu":
        if count == 0:
            raise UserError(f"Global.device is {device} but this PaddlePaddle has no usable GPU; "
                            "install paddlepaddle-gpu (README, Environment) or pass "
                            "-o Global.device=cpu (or auto)")
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise UserError(f"Global.device is {device} but only {count} GPU(s) are visible "
                            f"(gpu:0 to gpu:{count - 1})")
    paddle.set_device(device)
    return device


def init_distributed():
    """Join the process group when launched with several processes; returns (rank, world)."""
    if world_size() > 1:
        import paddle.distributed as dist

        dist.init_parallel_env()
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier():
    """Wait for every process (no-op when alone)."""
    if world_size() > 1:
        import paddle.distributed as dist

        dist.barrier()


def seed_everything(seed):
    """Seed Paddle, NumPy and Python: the same seed gives the same initial model."""
    paddle.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    random.seed(seed)


def all_reduce_sum(values):
    """Sum a list of floats over every process (identity when alone)."""
    if world_size() <= 1:
        return list(values)
    import paddle.distributed as dist

    t = paddle.to_tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(t)
    return [float(v) for v in t.numpy()]


def all_reduce_max(value):
    """The largest of a float over every process (identity when alone); a host sync."""
    if world_size() <= 1:
        return float(value)
    import paddle.distributed as dist

    t = paddle.to_tensor(np.asarray([value], dtype=np.float64))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.numpy()[0])


def any_rank(flag):
    """A 0-d bool tensor that is true on every process where ``flag`` is true on one.

    A collective on the device, no host sync; identity when alone.
    """
    if world_size() <= 1:
        return flag
    import paddle.distributed as dist

    value = flag.astype("float32")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return value > 0

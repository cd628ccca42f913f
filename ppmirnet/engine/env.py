"""Device, distributed set-up and seeding for the training and evaluation tools."""

import os
import random

import numpy as np
import paddle

from ..errors import UserError


def world_size():
    """Number of training processes (``paddle.distributed.launch`` sets it)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank():
    """This process's rank (0 when not launched distributed)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def set_device(device):
    """Select ``cpu`` or ``gpu``; a GPU request without CUDA is a :class:`UserError`."""
    if device == "gpu":
        if not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0:
            raise UserError("Global.device is gpu but this PaddlePaddle has no usable GPU; "
                            "install paddlepaddle-gpu or pass -o Global.device=cpu")
        # Under paddle.distributed.launch, "gpu" means this process's card
        # (FLAGS_selected_gpus).
        paddle.set_device("gpu")
    else:
        paddle.set_device("cpu")


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

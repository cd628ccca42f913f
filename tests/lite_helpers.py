"""Tiny training runs on the generated lite set, shared by the training and tool tests."""

import os
import re
import subprocess
import sys

from helpers import ROOT

LITE_CONFIG = os.path.join(ROOT, "configs", "mirnet_lite.yaml")

TRAIN_LINE = re.compile(
    r"\[Train\] epoch: (\d+)/(\d+), iter: (\d+)/(\d+), loss: ([0-9.]+), lr: ([0-9.]+), "
    r"batch_cost: ([0-9.]+) s, reader_cost: ([0-9.]+) s, ips: ([0-9.]+) samples/s")
EVAL_LINE = re.compile(r"\[Eval\] psnr: ([0-9.]+), ssim: ([0-9.]+)")


def tiny_overrides(lite_root, output_dir, **extra):
    """``-o`` overrides making the lite config tiny: 2 epochs of 6 iterations of 4 x 32x32."""
    values = {
        "Global.output_dir": output_dir,
        "Global.epochs": 2,
        "Global.print_batch_step": 1,
        "Global.eval_interval": 1,
        "Global.final_eval_vs_input": False,
        "DataLoader.Train.dataset.root": lite_root,
        "DataLoader.Train.dataset.patch_size": 32,
        "DataLoader.Train.dataset.repeat": 2,
        "DataLoader.Train.sampler.batch_size": 4,
        "DataLoader.Eval.dataset.root": lite_root,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def train_lines(text):
    """``[(epoch, iter, loss, lr), ...]`` of the [Train] lines of a log."""
    return [(int(m[0]), int(m[2]), float(m[4]), float(m[5])) for m in TRAIN_LINE.findall(text)]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def launch_training(overrides, log_dir, node=None, **popen):
    """``tools/train.py`` on the lite config under ``paddle.distributed.launch``, 2 CPU processes.

    Started in a session of its own, so a test can signal or kill the whole
    run with ``os.killpg(proc.pid, ...)``; ``popen`` sets its outputs.
    ``node=(master, rank)`` starts instead node ``rank`` of a two-node job
    (one process per node) whose master listens at ``master`` (``host:port``).
    """
    where = ["--nproc_per_node", "2"] if node is None else [
        "--nnodes", "2", "--master", node[0], "--rank", str(node[1]), "--nproc_per_node", "1"]
    cmd = [sys.executable, "-m", "paddle.distributed.launch", *where,
           "--log_dir", str(log_dir), "tools/train.py", "-c", LITE_CONFIG, "-o", *overrides]
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, GLOG_minloglevel="2"),
                            start_new_session=True, **popen)

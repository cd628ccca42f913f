"""Training and evaluation on bad data or under signals end promptly, cleanly and named."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet.config import load_config
from ppmirnet.engine.trainer import Trainer
from ppmirnet.errors import UserError

from helpers import ROOT
from lite_helpers import LITE_CONFIG, launch_training, read

SIZE = 40


def _overrides(data, out, **extra):
    values = {
        "Global.output_dir": out,
        "Global.epochs": 1,
        "Global.print_batch_step": 1,
        "Global.eval_during_train": False,
        "Global.final_eval_vs_input": False,
        "DataLoader.Train.dataset.name": "PairedImageFolder",
        "DataLoader.Train.dataset.root": data,
        "DataLoader.Train.dataset.patch_size": 32,
        "DataLoader.Train.dataset.repeat": 2,
        "DataLoader.Train.dataset.cache": False,
        "DataLoader.Train.sampler.batch_size": 2,
        "DataLoader.Eval.dataset.name": "PairedImageFolder",
        "DataLoader.Eval.dataset.root": data,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def _make_pairs(root, count=4, size=SIZE):
    rng = np.random.default_rng(0)
    for sub in ("input", "groundtruth"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i in range(count):
        clean = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(root, "input", f"{i}.png"), noisy)
        cv2.imwrite(os.path.join(root, "groundtruth", f"{i}.png"), clean)
    return root


def _truncate(path, keep=120):
    """Keep the PNG header (it still declares the size) but lose the pixel data."""
    with open(path, "rb") as f:
        head = f.read(keep)
    with open(path, "wb") as f:
        f.write(head)


def _train_cli(args, timeout=90, **popen):
    env = dict(os.environ, GLOG_minloglevel="2")
    cmd = [sys.executable, "tools/train.py", "-c", LITE_CONFIG, "-o", *args]
    tic = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, **popen)
    except subprocess.TimeoutExpired:
        pytest.fail(f"training did not end within {timeout} s")
    return proc, time.perf_counter() - tic


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A good data set and a finished 1-epoch run on it (``latest`` saved)."""
    base = tmp_path_factory.mktemp("bad")
    data = _make_pairs(str(base / "data"))
    out = str(base / "run")
    Trainer(load_config(LITE_CONFIG, _overrides(data, out))).train()
    return data, out


@pytest.mark.parametrize("problem", ["size", "patch", "header"])
def test_bad_pairs_are_found_before_the_model_is_built(tmp_path, problem):
    data = _make_pairs(str(tmp_path / "data"))
    bad = os.path.join(data, "groundtruth", "2.png")
    extra = {}
    if problem == "size":
        cv2.imwrite(bad, np.zeros((SIZE - 4, SIZE, 3), np.uint8))
        expected = f"{data}/input/2.png is {SIZE}x{SIZE} but {bad} is {SIZE}x{SIZE - 4}"
    elif problem == "patch":
        extra["DataLoader.Train.dataset.patch_size"] = 64
        expected = f"{data}/input/0.png is {SIZE}x{SIZE}, smaller than the training patch_size 64"
    else:
        with open(bad, "wb") as f:
            f.write(b"this is not an image")
        expected = f"cannot read {bad} as an image"
    out = tmp_path / "run"
    proc, _ = _train_cli(_overrides(data, str(out), **extra))
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: " + expected), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # stopped before any file was written or the model built


@pytest.mark.parametrize("workers", [0, 2])
def test_a_sample_failing_during_training_ends_the_run(trained, tmp_path, workers):
    data, run = trained
    data = shutil.copytree(data, tmp_path / "data")
    run = shutil.copytree(run, tmp_path / "run")
    with open(run / "latest.pdparams", "rb") as f:
        before = f.read()
    bad = data / "input" / "3.png"
    _truncate(bad)
    proc, seconds = _train_cli(_overrides(str(data), str(run), **{
        "Global.epochs": 3, "Global.resume": "auto",
        "DataLoader.Train.loader.num_workers": workers}))
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = _error_lines(proc.stderr)
    assert lines == [f"error: cannot read {bad} as an image"], proc.stderr[-2000:]
    assert seconds < 60
    with open(run / "latest.pdparams", "rb") as f:
        assert f.read() == before  # the last checkpoint is untouched
    assert not [n for n in os.listdir(run) if n.startswith(".")]


def test_evaluation_ends_on_a_bad_sample(trained, tmp_path):
    data, run = trained
    data = shutil.copytree(data, tmp_path / "data")
    bad = data / "groundtruth" / "1.png"
    _truncate(bad)
    env = dict(os.environ, GLOG_minloglevel="2")
    try:
        proc = subprocess.run(
            [sys.executable, "tools/eval.py", "-c", LITE_CONFIG, "-o",
             f"Global.pretrained_model={run}/latest", *_overrides(str(data), str(tmp_path / "o"))],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("evaluation did not end")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert _error_lines(proc.stderr) == [f"error: cannot read {bad} as an image"]


def test_every_rank_exits_under_distributed_launch(trained, tmp_path):
    data, _ = trained
    data = shutil.copytree(data, tmp_path / "data")
    bad = data / "input" / "3.png"
    _truncate(bad)
    logs = tmp_path / "launch"
    proc = launch_training(_overrides(str(data), str(tmp_path / "run"), **{"Global.epochs": 50}),
                           logs, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("a rank kept running after another failed")
    assert proc.returncode != 0
    worker_logs = "".join(read(logs / n) for n in os.listdir(logs) if n.startswith("workerlog"))
    assert f"error: cannot read {bad} as an image" in worker_logs
    # No process of the run is left (the launcher's group is empty).
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


def test_the_lite_config_trains_on_the_users_own_paired_folder(tmp_path):
    """README: any paired folder works with -o DataLoader.Train.dataset.root=DIR."""
    data = _make_pairs(str(tmp_path / "mine"))
    overrides = _overrides(data, str(tmp_path / "run"))
    overrides.remove("DataLoader.Train.dataset.name=PairedImageFolder")  # the lite config's own
    cfg = load_config(LITE_CONFIG, overrides)
    assert cfg["DataLoader"]["Train"]["dataset"]["name"] == "LitePairs"
    trainer = Trainer(cfg)
    assert [os.path.basename(n) for n, _ in trainer.train_set.pairs] == [f"{i}.png" for i in range(4)]
    trainer.train()
    assert os.path.isfile(tmp_path / "run" / "latest.pdparams")
    assert sorted(os.listdir(data)) == ["groundtruth", "input"]  # nothing added to the user's data


def test_a_folder_that_is_no_dataset_is_never_offered_for_deletion(tmp_path):
    from ppmirnet.data.paired import LitePairs

    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(UserError) as err:
        LitePairs(str(mine), "train")
    message = str(err.value)
    assert message.startswith(f"{mine} is neither a paired folder (input/ and groundtruth/) nor "
                              f"the lite set")
    assert "remove" not in message and "delete" not in message
    assert os.listdir(mine) == ["holiday.jpg"]


def test_tools_run_elsewhere_write_under_the_repository_not_the_working_directory(tmp_path):
    """The built-in configs' ./output and ./data mean the repository's (ignored) folders."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = dict(os.environ, GLOG_minloglevel="2")
    # The config is resolved in a child process working in that other folder.
    code = ("import json; from ppmirnet.config import load_config; "
            f"c = load_config({LITE_CONFIG!r}, ['DataLoader.Eval.dataset.root=mine']); "
            "print(json.dumps([c['Global']['output_dir'], c['Global']['save_inference_dir'], "
            "c['DataLoader']['Train']['dataset']['root'], c['DataLoader']['Eval']['dataset']['root']]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=dict(env, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out, inference, train_root, eval_root = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == os.path.join(ROOT, "output", "mirnet_lite")
    assert inference == os.path.join(ROOT, "inference", "mirnet_lite")
    assert train_root == os.path.join(ROOT, "data", "lite")
    assert eval_root == "mine"  # a path the user typed stays relative to where they are
    assert os.listdir(elsewhere) == []

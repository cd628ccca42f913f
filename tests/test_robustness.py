"""Nothing lost, nothing silent: atomic outputs, one training per folder, archives, no NaN.

Each test reproduces a hostile input: a full disk (a file size limit in a
child process, or a write failing with ENOSPC), two runs on one folder, a
re-run over an earlier one, NaN in a config or in weights, misplaced data,
files of the wrong kind or cut short.
"""

import errno
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.trainer import Trainer, optimize_step
from ppmirnet.errors import ConfigError, UserError
from ppmirnet.modeling import MIRNet
from ppmirnet.utils.io import atomic_path
from ppmirnet.utils.run_folder import LOCK_NAME, RunLock

from helpers import ROOT, folder_bytes, run_cli, run_tool_in_process
from lite_helpers import LITE_CONFIG, launch_training, read, tiny_overrides

TINY = dict(n_feat=8, n_RRG=1, n_MSRB=1, height=3, width=2)


def _cfg(lite_root, out, **extra):
    return load_config(LITE_CONFIG, tiny_overrides(lite_root, str(out), **extra))


def _short(lite_root, out, **extra):
    """A one-iteration run's config, no validation."""
    values = {"Global.max_iters": 1, "Global.eval_during_train": False}
    values.update(extra)
    return _cfg(lite_root, out, **values)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    paddle.seed(3)
    model = MIRNet(**TINY)
    path = str(tmp_path_factory.mktemp("w") / "tiny.pdparams")
    ckpt.save_weights(path, model.state_dict(), dict(TINY, name="MIRNet"))
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from ppmirnet.export import export_inference_model

    paddle.seed(3)
    folder = str(tmp_path_factory.mktemp("export") / "model")
    export_inference_model(MIRNet(**TINY), folder)
    return folder


def _file_size_limit(nbytes):
    # Python ignores SIGXFSZ: past the limit a write fails with EFBIG, as on a full disk.
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.RLIM_INFINITY))


def _one_error_line(stderr):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), stderr[-3000:]
    return lines[-1]


# -- every file whole or absent --------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True])
def test_export_onto_a_full_disk_writes_nothing_and_says_which_file(tiny_weights, tmp_path, legacy):
    save_dir = tmp_path / "exp"
    cmd = [sys.executable, "tools/export_model.py", "-c", LITE_CONFIG, "-o",
           f"Global.pretrained_model={tiny_weights}", "--save_dir", str(save_dir)]
    if legacy:
        cmd.append("--legacy_format")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, GLOG_minloglevel="2"),
                          preexec_fn=_file_size_limit(100_000))
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 1
    assert "wrote" not in proc.stdout
    if legacy:  # the weights handed to the exporting processes are the first file cut
        assert line == f"error: cannot write {save_dir}: File too large"
    else:
        assert line == (f"error: cannot write {save_dir}/inference.json: the program is not "
                        f"complete JSON (100000 bytes) (disk full, or a file size limit?); "
                        f"nothing was written")
    assert os.listdir(tmp_path) == []  # no folder, no staging left


def test_a_write_failing_with_enospc_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "eval_result.json"
    path.write_text("old")
    with pytest.raises(UserError) as err:
        with atomic_path(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("new, half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(err.value) == f"cannot write {path}: No space left on device"
    assert os.listdir(tmp_path) == ["eval_result.json"] and path.read_text() == "old"


def test_a_checkpoint_onto_a_full_disk_keeps_the_earlier_set(tmp_path, monkeypatch):
    prefix = str(tmp_path / "latest")
    ckpt.save_checkpoint(prefix, {"w": paddle.ones([2])}, {"m": paddle.ones([2])}, {"step": 1})
    before = folder_bytes(tmp_path)
    real_save = paddle.save

    def full_disk(obj, path, *args, **kwargs):
        if path.endswith("pdopt"):
            with open(path, "wb") as f:
                f.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(paddle, "save", full_disk)
    with pytest.raises(UserError, match=f"^cannot write {prefix}.pdopt: No space left on device$"):
        ckpt.save_checkpoint(prefix, {"w": paddle.zeros([2])}, {"m": paddle.zeros([2])}, {"step": 2})
    assert folder_bytes(tmp_path) == before


# -- one training per output folder ------------------------------------------------------

def test_a_second_training_on_a_folder_stops_before_any_work(lite_root, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "tools/train.py", "-c", LITE_CONFIG, "-o",
         *tiny_overrides(lite_root, str(out), **{"Global.epochs": 100})],
        cwd=ROOT, env=dict(os.environ, GLOG_minloglevel="2"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "latest.pdstates").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (out / "latest.pdstates").exists(), "the first run never saved"
        # The first run keeps training and saving; frozen (alive, lock held), its folder stays
        # still, so any change to it while the second run starts would be the second run's.
        first.send_signal(signal.SIGSTOP)
        before = folder_bytes(out)
        second = run_cli("tools/train.py", "-c", LITE_CONFIG, "-o",
                         *tiny_overrides(lite_root, str(out)), timeout=120)
        line = _one_error_line(second.stderr)
        assert second.returncode == 1
        assert line.startswith(f"error: {out} is in use by another training (pid {first.pid} on "
                               f"{socket.gethostname()}, started ")
        assert "tools/train.py -c" in line and "give another Global.output_dir" in line
        assert "[Train]" not in second.stdout
        # Nothing of the second run: no archive, no log line of its own.
        assert not list(tmp_path.glob("run_archived_*"))
        assert folder_bytes(out) == before
    finally:
        first.send_signal(signal.SIGCONT)
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM
    assert LOCK_NAME not in os.listdir(out)  # released on the signal


def test_a_stale_lock_is_taken_over_and_released(lite_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                             "started": 0, "command": "killed run"}))
    Trainer(_short(lite_root, out)).train()
    assert (out / "latest.pdparams").exists() and LOCK_NAME not in os.listdir(out)


def test_a_lock_of_another_host_is_not_taken_and_a_failed_start_releases_its_own(lite_root, tmp_path):
    out = tmp_path / "run"
    lock = RunLock(str(out))
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "other-node", "started": 0,
                                             "command": "train on other-node"}))
    with pytest.raises(UserError, match=r"in use by another training \(pid 1 on other-node, "
                                        r"started 1970-01-01 .*: train on other-node\)"):
        lock.acquire()
    os.remove(out / LOCK_NAME)
    os.rmdir(out)
    with pytest.raises(UserError, match="dataset folder not found"):
        Trainer(_short(lite_root, out, **{"DataLoader.Train.dataset": "{name: PairedImageFolder, "
                                                                      f"root: {tmp_path}/none}}"}))
    assert not out.exists()  # the lock released, the folder it made removed


# -- a new run never replaces an earlier one -------------------------------------------

def test_a_new_run_archives_the_earlier_runs_checkpoints(lite_root, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "best_model.pdparams").write_bytes(b"the earlier best model")
    (out / "train.log").write_text("earlier log\n")
    Trainer(_short(lite_root, out)).train()
    archived = list(tmp_path.glob("run_archived_*"))
    assert len(archived) == 1
    assert (archived[0] / "best_model.pdparams").read_bytes() == b"the earlier best model"
    assert (archived[0] / "train.log").read_text() == "earlier log\n"
    assert f"{out} held an earlier run's results (best_model.pdparams): moved to {archived[0]}" \
        in capsys.readouterr().out
    assert "earlier log" not in read(out / "train.log")
    assert sorted(os.listdir(out)) == ["config.yaml", "latest.pdopt", "latest.pdparams",
                                       "latest.pdstates", "train.log"]


def test_predict_archives_earlier_results_it_would_replace(tiny_weights, tmp_path, capsys):
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), np.full((32, 32, 3), 128, np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"earlier result")
    code, stdout, stderr = run_tool_in_process("predict", [
        "--weights", tiny_weights, "--input", str(image), "--output", str(out),
        "--device", "cpu"], capsys)
    assert code == 0, stderr
    archived = list(tmp_path.glob("out_archived_*"))
    assert len(archived) == 1 and (archived[0] / "a.png").read_bytes() == b"earlier result"
    assert f"{out} held an earlier run's results (a.png): moved to {archived[0]}" in stdout
    assert cv2.imread(str(out / "a.png")).shape == (32, 32, 3)


# -- no NaN or infinity passes silently -------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("LRScheduler.learning_rate=.nan", "LRScheduler.learning_rate is nan, expected a finite number"),
    ("Optimizer.epsilon=.inf", "Optimizer.epsilon is inf, expected a finite number"),
    ("Loss.eps=-.inf", "Loss.eps is -inf, expected a finite number"),
    ("Optimizer.beta2=1.5", "Optimizer.beta2 is 1.5, must be < 1.0"),
    ("LRScheduler.learning_rate=-0.1", "LRScheduler.learning_rate is -0.1, must be >= 0.0"),
])
def test_config_values_must_be_finite_and_in_range(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(LITE_CONFIG, [override])
    assert str(err.value) == f"{LITE_CONFIG}: {message}"


def test_a_list_of_floats_must_be_finite():
    cfg = os.path.join(ROOT, "configs", "mirnetv2_lite.yaml")
    with pytest.raises(ConfigError, match=r"LRScheduler.eta_mins\[1\] is nan, expected a finite"):
        load_config(cfg, ["LRScheduler={name: CosineAnnealingRestartCyclicLR, learning_rate: 0.1, "
                          "periods: [1, 1], restart_weights: [1, 1], eta_mins: [0.0, .nan]}"])


def test_weights_turning_non_finite_stop_the_run_and_latest_stays_finite(lite_root, tmp_path,
                                                                          monkeypatch):
    out = tmp_path / "run"
    trainer = Trainer(_cfg(lite_root, out, **{"Global.save_interval_iters": 2,
                                              "Global.eval_during_train": False,
                                              "Global.max_iters": 8}))
    real_step = type(trainer.optimizer).step
    steps = []

    def step_then_poison(opt):
        real_step(opt)
        steps.append(1)
        if len(steps) == 3:  # an update that overflows: the weights are NaN after it
            p = trainer.model.parameters()[0]
            p.set_value(paddle.full(p.shape, float("nan")))

    monkeypatch.setattr(type(trainer.optimizer), "step", step_then_poison)
    with pytest.raises(UserError) as err:
        trainer.train()
    latest = out / "latest"
    assert str(err.value) == (
        f"the weights became NaN or infinite by epoch 1, iteration 3 (global step 3) and were "
        f"not saved; {latest} keeps the weights of global step 2, the last saved (finite) ones: "
        f"lower the learning rate (or check the data) and resume with -o Global.resume=auto")
    state, _, states = ckpt.load_checkpoint(str(latest))
    assert int(states["global_step"]) == 2
    assert all(np.isfinite(v.numpy()).all() for v in state.values())
    assert LOCK_NAME not in os.listdir(out)


def test_a_step_with_a_finite_loss_and_non_finite_gradients_is_skipped():
    paddle.seed(0)
    model = paddle.nn.Linear(2, 2)
    before = [p.numpy().copy() for p in model.parameters()]
    opt = paddle.optimizer.Adam(learning_rate=0.1, parameters=model.parameters())
    # sqrt at 0: a finite loss (0) whose gradient is infinite.
    loss, skipped = optimize_step(model, lambda out, clean: paddle.sqrt((out * 0).sum()), opt,
                                  paddle.ones([1, 2]), None, return_skipped=True)
    assert float(loss) == 0.0 and bool(skipped)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)


@pytest.fixture
def nan_weights(tmp_path):
    paddle.seed(3)
    model = MIRNet(**TINY)
    state = model.state_dict()
    key = next(iter(state))
    state[key] = paddle.full(state[key].shape, float("nan"))
    path = str(tmp_path / "nan.pdparams")
    ckpt.save_weights(path, state, dict(TINY, name="MIRNet"))
    return path, key


def test_weights_with_nan_are_refused_by_predict_and_restorer(nan_weights, tmp_path):
    from ppmirnet.restorer import Restorer

    path, key = nan_weights
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), np.full((32, 32, 3), 128, np.uint8))
    proc = run_cli("tools/predict.py", "--weights", path, "--input", str(image), "--output",
                   str(tmp_path / "out"), "--device", "cpu", timeout=300)
    assert proc.returncode == 1
    assert _one_error_line(proc.stderr) == (
        f"error: {path} holds NaN or infinite values in 1 tensor(s) ({key}); these weights come "
        f"from a diverged training and would restore nothing; use an earlier checkpoint")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="holds NaN or infinite values"):
        Restorer(path, device="cpu")


def test_weights_with_nan_are_refused_by_eval_and_export(nan_weights):
    from ppmirnet.engine.dygraph import load_model

    path, _ = nan_weights
    with pytest.raises(UserError, match="holds NaN or infinite values"):
        load_model(load_config(LITE_CONFIG), path)


def test_a_restored_image_with_nan_is_never_written(tmp_path):
    from ppmirnet.files import FailedImages, restore_files

    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((16, 16, 3), 100, np.uint8))

    outputs = iter([np.nan, np.inf])

    def runner(batch):  # a's output NaN, b's infinite
        return np.full_like(batch, next(outputs))

    with pytest.raises(FailedImages) as err:
        restore_files(runner, [str(tmp_path / "a.png"), str(tmp_path / "b.png")],
                      str(tmp_path / "out"), progress=False)
    assert str(err.value) == (
        f"2 of 2 image(s) could not be restored (0 written):\n"
        f"  {tmp_path}/a.png: {tmp_path}/out/a.png: the restored image holds NaN or infinite "
        f"values (damaged weights or input?); not written\n"
        f"  {tmp_path}/b.png: {tmp_path}/out/b.png: the restored image holds NaN or infinite "
        f"values (damaged weights or input?); not written")
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


# -- data stays where the user put it ----------------------------------------------------

def test_a_missing_or_empty_dataset_root_of_a_lite_config_is_an_error(tmp_path):
    from ppmirnet.data.paired import LitePairs

    home = os.path.join(ROOT, "data")
    nope = tmp_path / "nope"
    with pytest.raises(UserError) as err:
        LitePairs(str(nope), "val", log=lambda m: None)
    assert str(err.value) == (
        f"dataset root {nope} not found: the lite set is generated by itself only under "
        f"{home}; give dataset.root a folder holding data, or make the lite set "
        f"there first: python tools/make_lite_data.py --out {nope} --task denoise")
    assert not nope.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=f"^dataset root {empty} is empty: "):
        LitePairs(str(empty), "val", task="sr", scale=2, log=lambda m: None)
    assert os.listdir(empty) == []


def test_a_gray_input_paired_with_a_colour_ground_truth_is_refused(tmp_path):
    from ppmirnet.data.paired import PairedImageFolder

    for folder in ("input", "groundtruth"):
        (tmp_path / folder).mkdir()
    cv2.imwrite(str(tmp_path / "input" / "a.png"), np.full((32, 32), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "groundtruth" / "a.png"), np.full((32, 32, 3), 90, np.uint8))
    with pytest.raises(UserError) as err:
        PairedImageFolder(str(tmp_path))
    assert str(err.value) == (
        f"{tmp_path}/input/a.png is grayscale (1 channel) but {tmp_path}/groundtruth/a.png is "
        f"colour (3 channels): the images of a pair must have the same channels")


# -- messages name the right thing -----------------------------------------------------

def test_resume_with_another_architecture_leaves_the_runs_config_alone(lite_root, tmp_path):
    out = tmp_path / "run"
    Trainer(_short(lite_root, out)).train()
    before = (out / "config.yaml").read_bytes(), (out / "train.log").read_bytes()
    with pytest.raises(UserError, match="latest.pdparams does not fit this model"):
        Trainer(_short(lite_root, out, **{"Global.resume": "auto", "Arch.n_feat": 16}))
    assert ((out / "config.yaml").read_bytes(), (out / "train.log").read_bytes()) == before
    assert LOCK_NAME not in os.listdir(out)


def test_weights_of_the_wrong_kind_are_named_as_such(tmp_path):
    run = tmp_path / "run"
    ckpt.save_checkpoint(str(run / "best_model"), {"w": paddle.ones([1])}, {}, {})
    png = tmp_path / "photo.png"
    png.write_bytes(b"png")
    cases = {
        str(run / "best_model.pdopt"): f"{run}/best_model.pdopt is the optimizer state of a "
                                       f"checkpoint, not its weights: give {run}/best_model.pdparams",
        str(png): f"{png} is an image, not a weights file (.pdparams)",
        str(run): f"{run} is a training output folder, not a weights file: give one of its "
                  f"checkpoints, e.g. {run}/best_model.pdparams",
        str(tmp_path): f"{tmp_path} is a folder, not a weights file (.pdparams)",
    }
    for path, message in cases.items():
        with pytest.raises(UserError) as err:
            ckpt.read_weights(path)
        assert str(err.value) == message
    with pytest.raises(UserError, match=f"^pretrained model not found: {tmp_path}/none.pdparams$"):
        ckpt.read_weights(str(tmp_path / "none"))


def _damaged_copy(exported, tmp_path, name, keep):
    copy = tmp_path / "model"
    shutil.copytree(exported, copy)
    path = copy / name
    path.write_bytes(path.read_bytes()[:keep])
    return copy, path


def test_infer_names_a_truncated_pdiparams(exported, tmp_path):
    copy, params = _damaged_copy(exported, tmp_path, "inference.pdiparams", 50_000)
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((16, 16, 3), 100, np.uint8))
    proc = run_cli("deploy/inference/infer.py", f"--model_dir={copy}", f"--image_dir={image}",
                   f"--output_dir={tmp_path / 'out'}", timeout=300)
    assert proc.returncode == 1
    line = _one_error_line(proc.stderr)
    assert line.startswith(f"error: {params} is damaged: cut short: 50000 bytes, a tensor ends at ")
    assert line.endswith("; export the model again with tools/export_model.py")
    assert not (tmp_path / "out").exists()


def test_export_onnx_of_a_truncated_program_ends_in_one_error_line(exported, tmp_path):
    copy, program = _damaged_copy(exported, tmp_path, "inference.json", 30_000)
    proc = run_cli("deploy/onnx/export_onnx.py", f"--model_dir={copy}",
                   f"--save_file={tmp_path / 'm.onnx'}", timeout=300)
    assert proc.returncode == 1
    assert _one_error_line(proc.stderr) == (
        f"error: {program} is damaged: the program is not complete JSON (30000 bytes); export "
        f"the model again with tools/export_model.py")
    assert not (tmp_path / "m.onnx").exists()


# -- beyond one machine --------------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(lite_root, out, logs, max_iters):
    """Two launchers on 127.0.0.1 as the two nodes of one CPU (gloo) job; their rank-0 log."""
    master = f"127.0.0.1:{_free_port()}"
    overrides = tiny_overrides(lite_root, str(out), **{
        "Global.max_iters": max_iters, "Global.resume": "auto", "Global.eval_during_train": False,
        "DataLoader.Train.sampler.batch_size": 2})
    nodes = [launch_training(overrides, logs / f"node{rank}", node=(master, rank),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    for node, text in zip(nodes, outputs):
        assert node.returncode == 0, text[-3000:]
    return read(logs / "node0" / "workerlog.0")


def test_two_nodes_train_checkpoint_and_resume(lite_root, tmp_path):
    out, logs = tmp_path / "run", tmp_path / "logs"
    log = _two_nodes(lite_root, out, logs, max_iters=2)
    assert "on 2 cpu process(es)" in log
    _, _, states = ckpt.load_checkpoint(str(out / "latest"))
    assert int(states["global_step"]) == 2
    first = ckpt.read_weights(str(out / "latest"))[1]

    log = _two_nodes(lite_root, out, tmp_path / "logs2", max_iters=3)
    assert f"resumed from {out}/latest: epoch 1, iteration 2/" in log
    _, _, states = ckpt.load_checkpoint(str(out / "latest"))
    assert int(states["global_step"]) == 3
    resumed = ckpt.read_weights(str(out / "latest"))[1]
    assert any(not np.array_equal(first[k].numpy(), resumed[k].numpy()) for k in first)
    assert LOCK_NAME not in os.listdir(out)

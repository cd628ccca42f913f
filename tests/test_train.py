"""Training engine: outputs, logs, seeding, exact resume, atomic checkpoints, multi-process, AMP."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.lr import WarmupCosine
from ppmirnet.engine.trainer import Trainer
from ppmirnet.losses import CharbonnierLoss

from helpers import ROOT
from lite_helpers import EVAL_LINE, LITE_CONFIG, TRAIN_LINE, read, tiny_overrides, train_lines


def _train(lite_root, out, **extra):
    cfg = load_config(LITE_CONFIG, tiny_overrides(lite_root, str(out), **extra))
    Trainer(cfg).train()
    return cfg


def _weights(path):
    return {k: v.numpy() for k, v in ckpt.read_weights(path)[1].items()}


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.fixture(scope="module")
def reference_run(lite_root, tmp_path_factory):
    """An uninterrupted 2-epoch run; other runs are compared with it."""
    out = tmp_path_factory.mktemp("ref")
    _train(lite_root, out)
    return out


def test_outputs_config_and_log_lines(reference_run):
    out = reference_run
    for name in ("latest", "best_model"):
        for ext in (".pdparams", ".pdopt", ".pdstates"):
            assert os.path.isfile(out / (name + ext)), name + ext
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no staging leftovers
    saved = load_config(str(out / "config.yaml"))
    assert saved["Global"]["output_dir"] == str(out) and saved["Global"]["epochs"] == 2
    assert saved["DataLoader"]["Train"]["sampler"]["batch_size"] == 4
    log = read(out / "train.log")
    lines = TRAIN_LINE.findall(log)
    assert len(lines) == 12  # 2 epochs x 6 iterations, one line each
    assert [(m[0], m[2]) for m in lines[:2]] == [("1", "1"), ("1", "2")]
    assert all(float(m[4]) > 0 and float(m[6]) > 0 and float(m[8]) > 0 for m in lines)
    assert len(EVAL_LINE.findall(log)) == 2
    states = paddle.load(str(out / "latest.pdstates"), return_numpy=True)
    assert (states["epoch"], states["epoch_iter"], states["global_step"]) == (2, 6, 12)
    assert states["arch"]["n_feat"] == 8
    # The weights alone say which network they are: the resolved Arch section.
    for name in ("latest", "best_model"):
        assert ckpt.read_arch(str(out / name)) == saved["Arch"]
    assert saved["Arch"]["name"] == "MIRNet" and saved["Arch"]["n_feat"] == 8


def test_same_seed_same_loss_curve(lite_root, reference_run, tmp_path):
    _train(lite_root, tmp_path / "again")
    ref = train_lines(read(reference_run / "train.log"))
    assert train_lines(read(tmp_path / "again" / "train.log")) == ref
    assert _max_diff(_weights(str(reference_run / "latest.pdparams")),
                     _weights(str(tmp_path / "again" / "latest.pdparams"))) == 0.0
    _train(lite_root, tmp_path / "other", **{"Global.seed": 7})
    assert train_lines(read(tmp_path / "other" / "train.log")) != ref


def test_resume_continues_exactly(lite_root, reference_run, tmp_path):
    out = tmp_path / "resumed"
    _train(lite_root, out, **{"Global.max_iters": 8})  # stops in epoch 2, iteration 2
    states = paddle.load(str(out / "latest.pdstates"), return_numpy=True)
    assert (states["epoch"], states["epoch_iter"], states["global_step"]) == (2, 2, 8)
    _train(lite_root, out, **{"Global.resume": "auto"})
    log = read(out / "train.log")
    assert "resumed from" in log and "epoch 2, iteration 2/6, global step 8" in log
    # Same loss and learning rate at every step, same final weights and optimizer state.
    assert train_lines(log) == train_lines(read(reference_run / "train.log"))
    assert _max_diff(_weights(str(reference_run / "latest.pdparams")),
                     _weights(str(out / "latest.pdparams"))) == 0.0
    ref_m, m = _adam_moments(reference_run), _adam_moments(out)
    assert len(m) == len(ref_m) > 50
    assert all(np.array_equal(ref_m[k], m[k]) for k in ref_m)


def _adam_moments(out):
    """``{structured parameter name: Adam first moment}`` of ``out/latest``."""
    names = paddle.load(str(out / "latest.pdstates"), return_numpy=True)["parameter_names"]
    opt = paddle.load(str(out / "latest.pdopt"))
    return {k: opt[f"{n}_moment1_0"].numpy() for k, n in names.items()}


def test_killed_run_resumes_to_the_same_weights(lite_root, reference_run, tmp_path):
    """SIGKILL at an arbitrary point (maybe mid-save), then resume=auto: same result."""
    out = tmp_path / "killed"
    args = [sys.executable, "tools/train.py", "-c", LITE_CONFIG, "-o",
            *tiny_overrides(lite_root, str(out), **{"Global.save_interval_iters": 1})]
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(out / "latest.pdstates"):
            states = paddle.load(str(out / "latest.pdstates"), return_numpy=True)
            if states["global_step"] >= 3:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = paddle.load(str(out / "latest.pdstates"), return_numpy=True)["global_step"]
    assert 3 <= step < 12, "the run was not killed in the middle"
    _train(lite_root, out, **{"Global.resume": "auto", "Global.save_interval_iters": 1})
    assert _max_diff(_weights(str(reference_run / "latest.pdparams")),
                     _weights(str(out / "latest.pdparams"))) == 0.0


def test_two_processes_equal_one_with_the_global_batch(lite_root, reference_run, tmp_path):
    """paddle.distributed.launch on CPU: 2 processes x batch 2 = 1 process x batch 4."""
    out = tmp_path / "dist"
    args = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
            "--log_dir", str(tmp_path / "launch"), "tools/train.py", "-c", LITE_CONFIG, "-o",
            *tiny_overrides(lite_root, str(out), **{"DataLoader.Train.sampler.batch_size": 2})]
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = read(out / "train.log")
    assert "on 2 cpu process(es)" in log
    ref_losses = [x[2] for x in train_lines(read(reference_run / "train.log"))]
    losses = [x[2] for x in train_lines(log)]
    assert np.allclose(losses, ref_losses, atol=2e-3)
    # Gradients averaged over the cards equal those of the whole batch (float rounding aside).
    assert _max_diff(_weights(str(reference_run / "latest.pdparams")),
                     _weights(str(out / "latest.pdparams"))) < 1e-3
    # Validation is split over the two processes and gathered: same PSNR as one process.
    ref_psnr = float(EVAL_LINE.findall(read(reference_run / "train.log"))[-1][0])
    assert float(EVAL_LINE.findall(log)[-1][0]) == pytest.approx(ref_psnr, abs=0.02)
    assert "samples: 4" in log


@pytest.mark.parametrize("level", ["amp", "O2"])
def test_amp_and_mixup_paths_run(lite_root, tmp_path, level):
    # On CPU Paddle keeps float32 under auto_cast, and GradScaler and
    # decorate do nothing: this only checks that the AMP branches run. Only a
    # GPU exercises half precision, the scaler and O2's cast; the CPU-reachable
    # parts of those are in test_train_faults.py.
    _train(lite_root, tmp_path, **{"Global.auto_cast": level, "Global.max_iters": 2,
                                   "Global.eval_during_train": False,
                                   "DataLoader.Train.mixup.start_epoch": 1})
    w = _weights(str(tmp_path / "latest.pdparams"))
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in w.values())
    assert len(train_lines(read(tmp_path / "train.log"))) == 2


# -- pieces ------------------------------------------------------------------------------

def test_official_learning_rate_schedule():
    s = WarmupCosine(2e-4, epochs=60, iters_per_epoch=10, warmup_epochs=3, eta_min=1e-6)
    per_epoch = [s.lr_at(10 * (e - 1)) for e in range(1, 61)]
    assert per_epoch[:4] == pytest.approx([2e-4 / 3, 4e-4 / 3, 2e-4, 2e-4])
    assert s.lr_at(10 * 30 + 9) == pytest.approx(1e-6 + (2e-4 - 1e-6) * (1 + np.cos(np.pi * 27 / 57)) / 2)
    assert per_epoch[-1] == pytest.approx(1e-6 + (2e-4 - 1e-6) * (1 + np.cos(np.pi * 56 / 57)) / 2)
    assert s.lr_at(5) == s.lr_at(0)  # constant within an epoch
    it = WarmupCosine(1e-3, epochs=4, iters_per_epoch=10, warmup_epochs=1, by_epoch=False)
    assert it.lr_at(0) == pytest.approx(1e-4) and it.lr_at(9) == pytest.approx(1e-3)
    assert it.lr_at(39) < 1e-5


def test_charbonnier_loss_value():
    pred = paddle.to_tensor(np.array([[-0.5, 0.2], [0.7, 1.5]], np.float32))
    target = paddle.to_tensor(np.array([[0.0, 0.1], [0.7, 1.0]], np.float32))
    d = np.array([0.0, 0.1, 0.0, 0.0])  # after clamping pred to [0, 1]
    expected = np.mean(np.sqrt(d ** 2 + 1e-6))
    assert float(CharbonnierLoss()(pred, target)) == pytest.approx(expected, rel=1e-5)
    assert float(CharbonnierLoss(clamp=False)(pred, target)) > expected


def test_checkpoint_set_is_atomic(tmp_path, monkeypatch):
    prefix = str(tmp_path / "latest")
    ckpt.save_checkpoint(prefix, {"w": paddle.ones([2])}, {"m": paddle.zeros([2])}, {"step": 1})
    # A save that dies half-way leaves the previous set whole.
    real_save = paddle.save
    calls = []

    def dying_save(obj, path):
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as f:
                f.write(b"trunc")
            raise KeyboardInterrupt("killed")
        real_save(obj, path)

    monkeypatch.setattr(paddle, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(prefix, {"w": paddle.full([2], 2.0)}, {"m": paddle.ones([2])}, {"step": 2})
    monkeypatch.setattr(paddle, "save", real_save)
    ckpt.recover(prefix)
    model, _, states = ckpt.load_checkpoint(prefix)
    assert states["step"] == 1 and model["w"].numpy().tolist() == [1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == ["latest.pdopt", "latest.pdparams", "latest.pdstates"]
    # Killed between the renames (marker written): recovery completes the new set.
    staged = {ext: str(tmp_path / f".latest.staging{ext}") for ext in ckpt.EXTENSIONS}
    real_save({"w": paddle.full([2], 3.0)}, staged[".pdparams"])
    real_save({"m": paddle.ones([2])}, staged[".pdopt"])
    real_save({"step": 3}, staged[".pdstates"])
    open(tmp_path / ".latest.staging.complete", "w").close()
    os.replace(staged[".pdparams"], prefix + ".pdparams")  # the first rename happened
    ckpt.recover(prefix)
    model, _, states = ckpt.load_checkpoint(prefix)
    assert states["step"] == 3 and model["w"].numpy().tolist() == [3.0, 3.0]
    assert sorted(os.listdir(tmp_path)) == ["latest.pdopt", "latest.pdparams", "latest.pdstates"]


def test_load_model_builds_the_network_the_weights_record(tmp_path):
    from ppmirnet.engine.dygraph import load_model
    from ppmirnet.modeling import MIRNet

    paddle.seed(5)
    small = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1, height=2)
    recorded = {"name": "MIRNet", **small.arch}
    ckpt.save_weights(str(tmp_path / "rec.pdparams"), small.state_dict(), recorded)
    paddle.save(small.state_dict(), str(tmp_path / "bare.pdparams"))
    cfg = load_config(LITE_CONFIG)  # Arch: n_feat 8, height 3: not the saved network
    assert cfg["Arch"] != recorded
    lines = []
    model = load_model(cfg, str(tmp_path / "rec.pdparams"), log=lines.append)
    assert model.arch == small.arch
    assert len(lines) == 1 and "records Arch MIRNet(" in lines[0] and "height=2" in lines[0]
    x = paddle.rand([1, 3, 16, 16])
    small.eval()
    assert np.array_equal(model(x).numpy(), small(x).numpy())
    # Without a record the config decides, and a mismatch is named.
    from ppmirnet.errors import UserError

    with pytest.raises(UserError, match="bare.pdparams does not fit this model"):
        load_model(cfg, str(tmp_path / "bare.pdparams"))
    cfg_h2 = load_config(LITE_CONFIG, ["Arch.height=2"])
    lines = []
    assert load_model(cfg_h2, str(tmp_path / "rec.pdparams"), log=lines.append).arch == small.arch
    assert lines == []  # config and record agree: nothing to say


def test_bad_pretrained_weights_are_named(tmp_path):
    from ppmirnet.errors import UserError
    from ppmirnet.modeling import MIRNet

    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    with pytest.raises(UserError, match="pretrained model not found: .*nope.pdparams"):
        ckpt.load_weights(model, str(tmp_path / "nope"))
    paddle.save(MIRNet(n_feat=8, n_RRG=1, n_MSRB=1, kernel_size=5).state_dict(), str(tmp_path / "k5.pdparams"))
    with pytest.raises(UserError, match=r"k5.pdparams: conv_in.weight has shape \[8, 3, 5, 5\], "
                                        r"the model expects \[8, 3, 3, 3\]"):
        ckpt.load_weights(model, str(tmp_path / "k5"))
    paddle.save(MIRNet(n_feat=8, n_RRG=2, n_MSRB=1).state_dict(), str(tmp_path / "rrg2.pdparams"))
    with pytest.raises(UserError, match=r"rrg2.pdparams does not fit this model \(\d+ unexpected"):
        ckpt.load_weights(model, str(tmp_path / "rrg2.pdparams"))

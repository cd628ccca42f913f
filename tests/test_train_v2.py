"""MIRNet-v2's recipe: iteration-based progressive training, its schedule, its MixUp, the lite run."""

import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.lr import CosineAnnealingRestartCyclicLR
from ppmirnet.engine.trainer import Trainer, mix_batch
from ppmirnet.errors import ConfigError

from helpers import ROOT, run_cli
from lite_helpers import read, train_lines

V2_LITE = os.path.join(ROOT, "configs", "mirnetv2_lite.yaml")


def tiny(lite_root, out, **extra):
    """Overrides: 8 iterations in two stages ((4, 32) then (2, 24)), 6 iterations per pass."""
    values = {
        "Global.output_dir": str(out), "Global.total_iters": 8, "Global.print_batch_step": 1,
        "Global.eval_interval_iters": 4, "Global.save_interval_iters": 100,
        "Global.final_eval_vs_input": False,
        "DataLoader.Train.dataset.root": lite_root, "DataLoader.Train.dataset.patch_size": 32,
        "DataLoader.Train.dataset.repeat": 2, "DataLoader.Train.sampler.batch_size": 4,
        "DataLoader.Train.progressive.batch_sizes": "[4, 2]",
        "DataLoader.Train.progressive.patch_sizes": "[32, 24]",
        "DataLoader.Train.progressive.iters": "[4, 4]",
        "LRScheduler.periods": "[3, 5]",
        "DataLoader.Eval.dataset.root": lite_root,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def train(lite_root, out, **extra):
    cfg = load_config(V2_LITE, tiny(lite_root, out, **extra))
    Trainer(cfg).train()
    return cfg


def weights(path):
    return {k: v.numpy() for k, v in ckpt.read_weights(path)[1].items()}


@pytest.fixture(scope="module")
def reference_run(lite_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("v2ref")
    train(lite_root, out)
    return out


def test_stages_switch_at_the_right_iteration(reference_run):
    log = read(reference_run / "train.log")
    assert "8 iterations, batch 4 per card" in log
    stages = re.findall(r"progressive stage (\d)/2 from iteration (\d+): batch (\d) per card, "
                        r"patch (\d+)", log)
    assert stages == [("1", "1", "4", "32"), ("2", "5", "2", "24")]
    lines = train_lines(log)
    # Logged by global step over a run that passes the data twice (6 iterations a pass).
    assert [it for _, it, _, _ in lines] == list(range(1, 9))
    assert [ep for ep, _, _, _ in lines] == [1] * 6 + [2] * 2
    assert len(re.findall(r"\[Eval\] psnr", log)) == 2  # iterations 4 and 8
    states = paddle.load(str(reference_run / "latest.pdstates"), return_numpy=True)
    assert states["global_step"] == 8


def test_learning_rates_of_the_run_follow_the_cyclic_formula(reference_run):
    base, periods, etas = 2e-3, [3, 5], [3e-3, 1e-5]

    def expected(t):
        i, start = (0, 0) if t <= 3 else (1, 3)
        return etas[i] + 0.5 * (base - etas[i]) * (1 + math.cos(math.pi * (t - start) / periods[i]))

    lrs = [lr for _, _, _, lr in train_lines(read(reference_run / "train.log"))]
    assert lrs == pytest.approx([round(expected(t), 6) for t in range(1, 9)], abs=1e-6)


def test_killed_run_resumes_in_its_stage_to_the_same_weights(lite_root, reference_run, tmp_path):
    out = tmp_path / "killed"
    args = [sys.executable, "tools/train.py", "-c", V2_LITE, "-o",
            *tiny(lite_root, out, **{"Global.save_interval_iters": 1})]
    proc = subprocess.Popen(args, cwd=ROOT, env=dict(os.environ, GLOG_minloglevel="2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(out / "latest.pdstates"):
            if paddle.load(str(out / "latest.pdstates"), return_numpy=True)["global_step"] >= 5:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = int(paddle.load(str(out / "latest.pdstates"), return_numpy=True)["global_step"])
    assert 5 <= step < 8, "the run was not killed in the second stage"
    train(lite_root, out, **{"Global.resume": "auto", "Global.save_interval_iters": 1})
    log = read(out / "train.log")
    assert f"global step {step}" in log
    assert f"progressive stage 2/2 from iteration {step + 1}: batch 2 per card, patch 24" in log
    ref = weights(str(reference_run / "latest.pdparams"))
    got = weights(str(out / "latest.pdparams"))
    assert ref.keys() == got.keys()
    assert max(float(np.abs(ref[k] - got[k]).max()) for k in ref) == 0.0


def test_cyclic_schedule_matches_the_formula_at_both_cycle_boundaries():
    # The official denoising schedule: base 2e-4, periods [92k, 208k], eta_mins [3e-4, 1e-6].
    base, periods, etas = 2e-4, [92000, 208000], [3e-4, 1e-6]
    sched = CosineAnnealingRestartCyclicLR(base, periods, [1, 1], etas)

    def formula(t):  # 1-based iteration t
        i = 0 if t <= 92000 else 1
        start = 0 if i == 0 else 92000
        return etas[i] + 0.5 * (base - etas[i]) * (1 + math.cos(math.pi * (t - start) / periods[i]))

    checks = [1, 2, 1000, 46000, 91999, 92000, 92001, 92002, 150000, 250000, 299999, 300000]
    for t in checks:
        assert sched.lr_at(t) == pytest.approx(formula(t), rel=1e-12, abs=0), t
    # The scheduler object, stepped once per iteration, gives iteration t its rate.
    stepped = CosineAnnealingRestartCyclicLR(base, [4, 6], [1, 0.5], [3e-4, 1e-6])
    seen = []
    for _ in range(12):
        seen.append(stepped())
        stepped.step()
    want = []
    for t in range(1, 13):
        tt = min(t, 10)
        i, start = (0, 0) if tt <= 4 else (1, 4)
        w, p = [1, 0.5][i], [4, 6][i]
        eta = [3e-4, 1e-6][i]
        want.append(eta + w * 0.5 * (base - eta) * (1 + math.cos(math.pi * (tt - start) / p)))
    assert seen == pytest.approx(want, rel=1e-12)
    # The first cycle rises from the base rate to eta_min (above it); the second restarts at base.
    assert sched.lr_at(1) < sched.lr_at(46000) < sched.lr_at(92000) == pytest.approx(3e-4)
    assert sched.lr_at(92001) == pytest.approx(base, rel=1e-8)
    assert sched.lr_at(300000) == pytest.approx(1e-6)


def test_mixup_with_identity_leaves_or_mixes_the_whole_batch_with_one_lambda():
    rng_data = np.random.default_rng(0)
    noisy = paddle.to_tensor(rng_data.random((5, 3, 4, 4), dtype=np.float32))
    clean = paddle.to_tensor(rng_data.random((5, 3, 4, 4), dtype=np.float32))
    cfg = {"alpha": 1.2, "use_identity": True, "one_lambda": True}
    rng = np.random.default_rng(1)
    untouched, lams = 0, []
    for _ in range(400):
        n, c = mix_batch(noisy, clean, rng, cfg)
        if n is noisy:
            assert c is clean
            untouched += 1
            continue
        n, c, x, y = n.numpy(), c.numpy(), noisy.numpy(), clean.numpy()
        # One permutation and ONE lambda explain every sample of input and target.
        perm = [_best(n[i], x, i) for i in range(5)]
        moved = [i for i in range(5) if perm[i] != i]
        if not moved:  # the identity permutation (1 in 120): nothing to see
            np.testing.assert_allclose(n, x, atol=1e-6)
            continue
        lam = _lambda(n[moved[0]], x[moved[0]], x[perm[moved[0]]])
        assert all(abs(_lambda(n[i], x[i], x[perm[i]]) - lam) < 1e-4 for i in moved)
        np.testing.assert_allclose(n, lam * x + (1 - lam) * x[perm], atol=1e-5)
        np.testing.assert_allclose(c, lam * y + (1 - lam) * y[perm], atol=1e-5)
        lams.append(lam)
    assert 160 < untouched < 240  # a fair draw: 200 expected
    # Beta(1.2, 1.2): mean 0.5, variance 1/(4 * 3.4) = 0.0735.
    assert abs(np.mean(lams) - 0.5) < 0.05 and abs(np.var(lams) - 0.0735) < 0.02


def _lambda(mixed, a, b):
    d = (a - b).ravel()
    return float((mixed - b).ravel() @ d / (d @ d)) if d @ d > 0 else 1.0


def _residual(mixed, a, b):
    lam = _lambda(mixed, a, b)
    return float(np.abs(mixed - (lam * a + (1 - lam) * b)).max())


def _best(mixed, x, i):
    """The partner of sample ``i`` in a mix (``i`` itself when a permutation fixed it)."""
    if np.allclose(mixed, x[i], atol=1e-6):
        return i
    return int(np.argmin([_residual(mixed, x[i], x[j]) for j in range(len(x))]))


@pytest.mark.parametrize("override, message", [
    ({"Global.epochs": 3}, "set exactly one of Global.epochs"),
    ({"DataLoader.Train.progressive.iters": "[4, 5]"}, "iters sum to 9, but Global.total_iters is 8"),
    ({"DataLoader.Train.sampler.batch_size": 2}, "must be the largest progressive batch size (4)"),
])
def test_inconsistent_length_settings_are_named(lite_root, tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(V2_LITE, tiny(lite_root, tmp_path, **override))


def test_lite_config_beats_its_input(lite_root, tmp_path):
    """The whole configs/mirnetv2_lite.yaml run, as documented (about two minutes)."""
    proc = run_cli("tools/train.py", "-c", V2_LITE, "-o", f"Global.output_dir={tmp_path}",
                   f"DataLoader.Train.dataset.root={lite_root}",
                   f"DataLoader.Eval.dataset.root={lite_root}", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    gain = re.search(r"model vs (?:noisy )?input: \+?(-?[0-9.]+) dB PSNR, \+?(-?[0-9.]+) SSIM", text)
    assert gain, text[-2000:]
    assert float(gain[1]) > 3.0 and float(gain[2]) > 0.1
    assert os.path.isfile(tmp_path / "best_model.pdparams")
    assert ckpt.read_arch(str(tmp_path / "latest.pdparams"))["name"] == "MIRNetV2"

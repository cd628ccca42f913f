"""Training faults that GPU runs meet, reproduced on CPU.

Paddle turns AMP off without a GPU (``auto_cast``, ``decorate`` and
``GradScaler`` become no-ops), so these tests drive the same trainer code
paths by other means: O2's cast of the weights to float16 is applied with the
body of ``paddle.amp.decorate`` (:func:`_o2_cast`), non-finite losses are
injected into the loss, and two gloo processes stand for two cards.

Only a GPU exercises: the float16 forward and backward, ``GradScaler``'s own
skip flag and loss-scale update (and their state in checkpoints), NCCL.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import paddle
import pytest

from ppmirnet import compat
from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.trainer import Trainer
from ppmirnet.errors import UserError
from ppmirnet.losses import CharbonnierLoss

from helpers import ROOT
from lite_helpers import LITE_CONFIG, read, tiny_overrides, train_lines


def _cfg(lite_root, out, **extra):
    extra = {k: v for k, v in extra.items() if v is not None}
    return load_config(LITE_CONFIG, tiny_overrides(lite_root, str(out), **extra))


def _weights(path):
    return {k: v.numpy() for k, v in ckpt.read_weights(path)[1].items()}


@pytest.fixture(scope="module")
def fp32_checkpoint(lite_root, tmp_path_factory):
    """``latest`` of a float32 run stopped after 3 iterations."""
    out = tmp_path_factory.mktemp("fp32")
    Trainer(_cfg(lite_root, out, **{"Global.max_iters": 3,
                                    "Global.eval_during_train": False})).train()
    return str(out / "latest")


def _o2_cast(models, optimizers=None, level="O1", dtype="float16", save_dtype=None, **_):
    """``paddle.amp.decorate(level="O2")`` past its "no GPU: do nothing" check."""
    from paddle.amp.auto_cast import StateDictHook, _set_multi_precision, amp_initialize

    assert level == "O2"
    amp_initialize(models=[models], dtype=dtype, excluded_layers=None)
    _set_multi_precision(optimizers, True)
    for layer in models.sublayers(include_self=True):
        layer.register_state_dict_hook(StateDictHook(save_dtype))
    return models, optimizers


def _resumed(lite_root, out, checkpoint, level, monkeypatch):
    if level == "O2":
        monkeypatch.setattr(paddle.amp, "decorate", _o2_cast)
    return Trainer(_cfg(lite_root, out, **{"Global.resume": checkpoint,
                                           "Global.auto_cast": level}))


def _assert_float16_of(param, value):
    """``param`` is ``value`` in float16 (Paddle 2.6 may round the cast to the other neighbour)."""
    assert param.dtype == paddle.float16
    np.testing.assert_allclose(param.numpy().astype(np.float32), value, rtol=2.0 ** -10, atol=1e-7)


def _masters(trainer):
    return {k: trainer.optimizer._master_weights[p.name].numpy()
            for k, p in trainer.model.named_parameters()}


# -- 1. AMP O2 resume -------------------------------------------------------------------

def test_float32_checkpoint_resumes_under_o2_and_o2_checkpoint_everywhere(
        lite_root, fp32_checkpoint, tmp_path, monkeypatch):
    ref = _weights(fp32_checkpoint + ".pdparams")
    t = _resumed(lite_root, tmp_path / "o2", fp32_checkpoint, "O2", monkeypatch)
    params = dict(t.model.named_parameters())
    assert {str(p.dtype) for p in params.values()} == {"paddle.float16"}
    for k, p in params.items():
        _assert_float16_of(p, ref[k])
    # The float32 weights become the master copies: nothing lost to the cast.
    masters = _masters(t)
    assert all(np.array_equal(masters[k], ref[k]) for k in masters)

    # Saved under O2: float32 .pdparams (the float16 weights) + master copies in .pdopt.
    o2_checkpoint = str(tmp_path / "o2" / "o2ckpt")
    t.rank = 0
    t._save("o2ckpt")
    saved = _weights(o2_checkpoint + ".pdparams")
    assert all(v.dtype == np.float32 for v in saved.values())
    assert any(not np.array_equal(saved[k], ref[k]) for k in ref)  # float16-rounded

    for level in (None, "O1"):  # float32 weights: the exact master copies
        monkeypatch.undo()
        t = _resumed(lite_root, tmp_path / str(level), o2_checkpoint, level, monkeypatch)
        for k, p in t.model.named_parameters():
            assert p.dtype == paddle.float32
            np.testing.assert_array_equal(p.numpy(), ref[k])
        assert "master_weights" not in t.optimizer.state_dict()
    t = _resumed(lite_root, tmp_path / "o2again", o2_checkpoint, "O2", monkeypatch)
    masters = _masters(t)
    assert all(np.array_equal(masters[k], ref[k]) for k in masters)
    for k, p in t.model.named_parameters():
        _assert_float16_of(p, ref[k])


# -- 2. random state from another machine --------------------------------------------------

def _with_rng(checkpoint, tmp_path, rng):
    """A copy of ``checkpoint`` whose saved random state is ``rng``."""
    prefix = str(tmp_path / "ckpt")
    for ext in (".pdparams", ".pdopt"):
        with open(checkpoint + ext, "rb") as a, open(prefix + ext, "wb") as b:
            b.write(a.read())
    states = paddle.load(checkpoint + ".pdstates", return_numpy=True)
    states["rng"] = rng
    paddle.save(states, prefix + ".pdstates")
    return prefix


@pytest.mark.parametrize("saved_on", ["two_gpus", "gpu"])
def test_random_state_of_another_machine_warns_and_resumes(
        lite_root, fp32_checkpoint, tmp_path, saved_on):
    cpu_state = paddle.get_rng_state("cpu")[0]
    # paddle.get_rng_state() on a 2-GPU machine: one state per visible card.
    rng = [cpu_state, cpu_state] if saved_on == "two_gpus" else {"device": "gpu", "state": cpu_state}
    prefix = _with_rng(fp32_checkpoint, tmp_path, rng)
    t = Trainer(_cfg(lite_root, tmp_path / "run", **{"Global.resume": prefix}))
    assert t.global_step == 3
    log = read(tmp_path / "run" / "train.log")
    assert "random state not restored" in log and "resumed from" in log


def test_random_state_round_trip():
    saved = compat.get_rng_state()
    assert saved["device"] == "cpu"
    if compat.paddle_version() < (3, 0):
        # Paddle 2.6's GeneratorState pickles to its seed only: nothing is saved.
        assert saved["state"] is None
        assert "cannot store a random state" in compat.set_rng_state(saved)
        return
    a = paddle.rand([4]).numpy()
    saved = pickle.loads(pickle.dumps(saved))
    assert compat.set_rng_state(saved) is None
    np.testing.assert_array_equal(paddle.rand([4]).numpy(), a)
    assert compat.set_rng_state(paddle.get_rng_state()) is None  # the list of older checkpoints
    assert "2 device states" in compat.set_rng_state([saved["state"]] * 2)


# -- 3. non-finite losses ----------------------------------------------------------------

class _Injector:
    """Wraps the trainer's loss: records the weights before each step, returns inf at ``bad``."""

    def __init__(self, trainer, bad):
        self.trainer, self.bad, self.calls, self.before = trainer, set(bad), 0, []
        self.loss_fn = trainer.loss_fn
        trainer.loss_fn = self

    def __call__(self, pred, target):
        self.calls += 1
        self.before.append({k: v.numpy().copy() for k, v in self.trainer.model.state_dict().items()})
        loss = self.loss_fn(pred, target)
        return loss * float("inf") if self.calls in self.bad else loss


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("level", [None, "O1"])
def test_non_finite_step_is_skipped_and_training_goes_on(lite_root, tmp_path, level):
    t = Trainer(_cfg(lite_root, tmp_path, **{"Global.auto_cast": level,
                                             "Global.max_nonfinite_steps": 3}))
    inj = _Injector(t, bad={3, 4})
    t.train()
    assert inj.calls == 12
    assert not _same(inj.before[2], inj.before[1])  # step 2 updated the weights
    assert _same(inj.before[3], inj.before[2]) and _same(inj.before[4], inj.before[2])
    assert not _same(inj.before[5], inj.before[4])
    log = read(tmp_path / "train.log")
    assert log.count("1 of the last 1 iterations had a non-finite loss and were skipped") == 2
    assert len(train_lines(log)) == 10 and log.count("iter: 3/6, loss: nan") == 1
    assert log.count("iter: 4/6, loss: nan") == 1
    assert np.isfinite(list(_weights(str(tmp_path / "latest.pdparams")).values())[0]).all()


def test_consecutive_non_finite_steps_stop_with_the_last_good_state(lite_root, tmp_path):
    t = Trainer(_cfg(lite_root, tmp_path, **{"Global.max_nonfinite_steps": 3}))
    inj = _Injector(t, bad={3, 4, 5})
    with pytest.raises(UserError, match="loss not finite for 3 consecutive iterations"):
        t.train()
    assert inj.calls == 5
    assert _same(_weights(str(tmp_path / "latest.pdparams")), inj.before[2])
    states = paddle.load(str(tmp_path / "latest.pdstates"), return_numpy=True)
    assert states["global_step"] == 5
    assert "Global.resume=auto" in read(tmp_path / "train.log")


_INJECT = """
import os, runpy, sys
from ppmirnet.losses import CharbonnierLoss
bad = {int(s) for s in os.environ["INJECT_STEPS"].split(",")}
mine = os.environ.get("PADDLE_TRAINER_ID", "0") == os.environ["INJECT_RANK"]
forward, calls = CharbonnierLoss.forward, [0]
def injected(self, pred, target):
    calls[0] += 1
    loss = forward(self, pred, target)
    return loss * float("inf") if mine and calls[0] in bad else loss
CharbonnierLoss.forward = injected
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_two_processes_agree_to_skip_and_stop(lite_root, tmp_path):
    """Only rank 1's loss is inf: both skip those steps and both stop, none hangs."""
    script = tmp_path / "inject.py"
    script.write_text(_INJECT)
    out = tmp_path / "dist"
    args = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
            "--log_dir", str(tmp_path / "launch"), str(script), "tools/train.py", "-c",
            LITE_CONFIG, "-o", *tiny_overrides(lite_root, str(out), **{
                "DataLoader.Train.sampler.batch_size": 2, "Global.max_nonfinite_steps": 3,
                "Global.eval_during_train": False})]
    env = dict(os.environ, GLOG_minloglevel="2", INJECT_STEPS="2,4,5,6", INJECT_RANK="1",
               PYTHONPATH=ROOT)
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    for rank in (0, 1):
        worker = read(tmp_path / "launch" / f"workerlog.{rank}")
        assert "loss not finite for 3 consecutive iterations" in worker, worker[-2000:]
    log = read(out / "train.log")
    assert log.count("1 of the last 1 iterations had a non-finite loss and were skipped") == 4
    assert paddle.load(str(out / "latest.pdstates"), return_numpy=True)["global_step"] == 6


# -- 6. host syncs -----------------------------------------------------------------------

def test_trainer_reads_the_device_only_at_log_steps(lite_root, tmp_path, monkeypatch):
    """Tensor-to-host reads made by ppmirnet code, by the step they happen in."""
    t = Trainer(_cfg(lite_root, tmp_path, **{"Global.print_batch_step": 3,
                                             "Global.eval_during_train": False}))
    reads = {}
    for name in ("numpy", "item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(paddle.Tensor, name)

        def counted(self, *a, _original=original, **kw):
            caller = sys._getframe(1).f_code.co_filename
            if os.sep + "ppmirnet" + os.sep in caller:
                reads[t.global_step] = reads.get(t.global_step, 0) + 1
            return _original(self, *a, **kw)

        monkeypatch.setattr(paddle.Tensor, name, counted)
    t.train()
    monkeypatch.undo()
    assert t.global_step == 12
    assert sorted(reads) == [3, 6, 9, 12] and all(n == 1 for n in reads.values()), reads


# -- 5. devices --------------------------------------------------------------------------

def test_device_accepts_gpu_n_and_the_launcher_assigns_the_card(tmp_path):
    from ppmirnet.engine.env import resolve_device, set_device

    launched = {"PADDLE_TRAINER_ID": "1", "FLAGS_selected_gpus": "1"}
    assert resolve_device("gpu:2", {}) == "gpu:2" and resolve_device("gpu", {}) == "gpu"
    assert resolve_device("gpu:2", launched) == "gpu:1" and resolve_device("gpu", launched) == "gpu:1"
    assert resolve_device("cpu", launched) == "cpu"
    config = tmp_path / "c.yaml"
    config.write_text(open(LITE_CONFIG).read())
    assert load_config(str(config), ["Global.device=gpu:1"])["Global"]["device"] == "gpu:1"
    from ppmirnet.errors import ConfigError
    with pytest.raises(ConfigError, match="Global.device is 'cuda:0', expected auto, cpu, gpu or gpu:N"):
        load_config(str(config), ["Global.device=cuda:0"])
    if not paddle.is_compiled_with_cuda():
        with pytest.raises(UserError, match="Global.device is gpu:1 but this PaddlePaddle has no usable GPU"):
            set_device("gpu:1")
    assert set_device("cpu") == "cpu"

"""Training whose disk fills up or turns read-only stops naming the file, checkpoints intact."""

import errno
import logging
import os
import subprocess
import sys

import paddle
import pytest

from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.logger import LOGGER_NAME
from ppmirnet.engine.trainer import Trainer
from ppmirnet.errors import UserError

from helpers import ROOT
from lite_helpers import LITE_CONFIG, tiny_overrides


def _trainer(lite_root, out):
    return Trainer(load_config(LITE_CONFIG, tiny_overrides(
        lite_root, str(out), **{"Global.eval_during_train": False})))


class _AtStep:
    """Wraps the trainer's loss: calls ``action()`` at the start of step ``step`` (1-based)."""

    def __init__(self, trainer, step, action):
        self.trainer, self.step, self.action, self.calls = trainer, step, action, 0
        self.loss_fn = trainer.loss_fn
        trainer.loss_fn = self

    def __call__(self, pred, target):
        self.calls += 1
        if self.calls == self.step:
            self.action()
        return self.loss_fn(pred, target)


class _Unwritable:
    """A file object whose writes fail as a read-only or forbidden file system's do."""

    def __init__(self, code):
        self.code = code

    def write(self, text):
        raise OSError(self.code, os.strerror(self.code))

    def flush(self):
        pass

    def close(self):
        pass


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES],
                         ids=["ENOSPC", "EROFS", "EACCES"])
def test_train_log_failing_mid_run_stops_the_run(lite_root, tmp_path, capsys, code):
    out = tmp_path / "run"
    trainer = _trainer(lite_root, out)
    saved = {}

    def fill_up():
        saved["latest"] = _read_bytes(out / "latest.pdparams")  # of the first epoch
        handler = next(h for h in logging.getLogger(LOGGER_NAME).handlers
                       if isinstance(h, logging.FileHandler))
        handler.stream.close()
        # /dev/full: every write fails with ENOSPC, as on a full disk.
        handler.stream = (open("/dev/full", "w", encoding="utf-8") if code == errno.ENOSPC
                          else _Unwritable(code))

    _AtStep(trainer, trainer.iters_per_epoch + 2, fill_up)
    with pytest.raises(UserError) as err:
        trainer.train()
    assert str(err.value) == f"cannot write {out / 'train.log'}: {os.strerror(code)}"
    assert trainer.global_step == trainer.iters_per_epoch + 2  # stopped at that step's log line
    assert "Logging error" not in capsys.readouterr().err
    assert _read_bytes(out / "latest.pdparams") == saved["latest"]
    assert int(ckpt.load_checkpoint(str(out / "latest"))[2]["global_step"]) == \
        trainer.iters_per_epoch
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(lite_root, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / "run"
    trainer = _trainer(lite_root, out)
    saved = {}
    real_save = paddle.save

    def full_disk_for_optimizer_state(obj, path, *args, **kwargs):
        if ".pdopt" in os.path.basename(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_save(obj, path, *args, **kwargs)

    def fill_up():
        saved["latest"] = _read_bytes(out / "latest.pdparams")
        monkeypatch.setattr(paddle, "save", full_disk_for_optimizer_state)

    _AtStep(trainer, trainer.iters_per_epoch + 1, fill_up)
    with pytest.raises(UserError) as err:
        trainer.train()
    assert str(err.value) == f"cannot write {out / 'latest.pdopt'}: No space left on device"
    monkeypatch.undo()
    assert _read_bytes(out / "latest.pdparams") == saved["latest"]
    assert int(ckpt.load_checkpoint(str(out / "latest"))[2]["global_step"]) == \
        trainer.iters_per_epoch
    # The staged .pdparams of the failed save is gone too.
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_train_log_on_a_full_disk_is_one_line_from_the_tool(lite_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    os.symlink("/dev/full", out / "train.log")
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.run(
        [sys.executable, "tools/train.py", "-c", LITE_CONFIG, "-o",
         *tiny_overrides(lite_root, str(out))], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: cannot write {out / 'train.log'}: No space left on device"], \
        proc.stderr[-2000:]
    assert not os.path.exists(out / "latest.pdparams")

"""SIGINT (Ctrl-C) and SIGTERM end a training run promptly, with ``latest`` saved to resume from."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.stop import StopFlag

from helpers import ROOT
from lite_helpers import LITE_CONFIG, launch_training, read, tiny_overrides, train_lines

STOPPED = re.compile(r"stopped by (SIG\w+) at epoch (\d+), iteration (\d+)/(\d+) "
                     r"\(global step (\d+)\)(.*); saved (\S+): resume with -o Global.resume=auto")


def _long_run(lite_root, out, **extra):
    """Overrides of a run far longer than any test: it ends only by the signal."""
    return tiny_overrides(lite_root, str(out), **{"Global.epochs": 1000,
                                                  "Global.eval_during_train": False, **extra})


class _Run:
    """``tools/train.py`` in its own process group (as a shell runs it), stdout read as it comes."""

    def __init__(self, overrides):
        env = dict(os.environ, GLOG_minloglevel="2")
        self.proc = subprocess.Popen(
            [sys.executable, "tools/train.py", "-c", LITE_CONFIG, "-o", *overrides], cwd=ROOT,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.lines, self.stderr = [], []
        self._out = threading.Thread(target=self._read, args=(self.proc.stdout, self.lines))
        self._err = threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr))
        self._out.start()
        self._err.start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line)

    def wait_for(self, pattern, count=1, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(pattern in line for line in list(self.lines)) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"no {pattern!r} line; stderr: {''.join(self.stderr)[-2000:]}")

    def signal_group(self, signum):
        """Signal the whole process group, as Ctrl-C in a terminal does; returns seconds to exit."""
        tic = time.monotonic()
        os.killpg(self.proc.pid, signum)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"training still running 60 s after {signal.Signals(signum).name}")
        seconds = time.monotonic() - tic
        self._out.join()
        self._err.join()
        return seconds

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    @property
    def out(self):
        return "".join(self.lines)


def _check_stopped(run, out, signum, seconds):
    name = signal.Signals(signum).name
    err = "".join(run.stderr)
    assert run.proc.returncode == 128 + signum, err[-2000:]
    assert "Traceback" not in err and "Traceback" not in run.out, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: stopped by " + name), err[-2000:]
    m = STOPPED.search(lines[0])
    assert m and m[1] == name and m[7] == str(out / "latest"), lines[0]
    assert m[6] == ""  # not in a validation
    step = int(m[5])
    # The log says it too, and the steps logged before are the ones saved.
    assert lines[0][len("error: "):] in read(out / "train.log")
    assert train_lines(run.out)[-1][1] == int(m[3])
    _, _, states = ckpt.load_checkpoint(str(out / "latest"))
    assert int(states["global_step"]) == step >= 1
    assert (int(states["epoch"]), int(states["epoch_iter"])) == (int(m[2]), int(m[3]))
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no staging leftovers
    # Promptly: a step of this tiny model is a fraction of a second.
    assert seconds < 20, f"exited {seconds:.1f} s after {name}"
    return step


def test_sigterm_saves_latest_and_the_run_resumes_from_it(lite_root, tmp_path):
    out = tmp_path / "run"
    run = _Run(_long_run(lite_root, out))
    run.wait_for("[Train]", count=3)
    seconds = run.signal_group(signal.SIGTERM)
    step = _check_stopped(run, out, signal.SIGTERM, seconds)
    print(f"SIGTERM: exited {seconds:.2f} s after the signal, at global step {step}")

    resumed = _Run(_long_run(lite_root, out, **{"Global.resume": "auto",
                                                "Global.max_iters": step + 1}))
    resumed.proc.wait(timeout=120)
    resumed._out.join()
    resumed._err.join()
    assert resumed.proc.returncode == 0, "".join(resumed.stderr)[-2000:]
    assert f"global step {step}," in resumed.out and "resumed from" in resumed.out
    _, _, states = ckpt.load_checkpoint(str(out / "latest"))
    assert int(states["global_step"]) == step + 1


def test_ctrl_c_with_loader_workers_stops_without_worker_tracebacks(lite_root, tmp_path):
    out = tmp_path / "run"
    run = _Run(_long_run(lite_root, out, **{"DataLoader.Train.loader.num_workers": 2}))
    run.wait_for("[Train]", count=3)
    seconds = run.signal_group(signal.SIGINT)  # to the workers too, as a terminal does
    step = _check_stopped(run, out, signal.SIGINT, seconds)
    print(f"SIGINT (2 workers): exited {seconds:.2f} s after the signal, at global step {step}")


# -- where the signal lands ------------------------------------------------------------
# Each in a process of its own: a signal sent to the test process itself could be
# taken by a thread of a native library an earlier test loaded there.

def _train_with(tmp_path, lite_root, setup, overrides):
    """``tools/train.py`` in a child whose ``setup`` (Python source) runs first; ``(proc, out)``."""
    out = tmp_path / "o"
    script = (
        "import os, signal, sys\n"
        + setup +
        "from ppmirnet.cli import run_tool\n"
        "from ppmirnet.commands import train\n"
        "code = run_tool(train.main, sys.argv[1:])\n"
        "# The handlers of before the run are back.\n"
        "print('handler after the run:', signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", script, "-c", LITE_CONFIG, "-o",
                           *tiny_overrides(lite_root, str(out), **overrides)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc, out


def test_a_signal_during_validation_abandons_it(lite_root, tmp_path):
    """Validation is abandoned at the next batch, ``latest`` saved, no best_model."""
    calls = tmp_path / "calls"
    setup = (
        "from ppmirnet.engine import evaluator\n"
        "real = evaluator.DygraphRunner.__call__\n"
        "def runner(self, noisy):\n"
        f"    with open({str(calls)!r}, 'a') as f:\n"
        "        f.write('x')\n"
        f"    if os.path.getsize({str(calls)!r}) == 1:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return real(self, noisy)\n"
        "evaluator.DygraphRunner.__call__ = runner\n"
    )
    proc, out = _train_with(tmp_path, lite_root, setup, {"Global.eval_interval": 1,
                                                         "DataLoader.Eval.sampler.batch_size": 1})
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert "Traceback" not in proc.stderr
    m = STOPPED.search(proc.stderr.splitlines()[-1])
    per_epoch = int(re.search(r"(\d+) iterations per epoch", read(out / "train.log"))[1])
    assert m[6] == ", validation abandoned" and m[5] == str(per_epoch) and per_epoch > 1
    # The other validation images (4 of them) were not restored.
    assert calls.read_text() == "x"
    _, _, states = ckpt.load_checkpoint(str(out / "latest"))
    assert int(states["global_step"]) == per_epoch
    assert not os.path.exists(out / "best_model.pdparams")
    assert "handler after the run: True" in proc.stdout


def test_a_signal_before_training_starts_exits_at_once(lite_root, tmp_path):
    setup = (
        "from ppmirnet.engine import trainer\n"
        "def build_model(arch):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    sys.exit('the signal did not stop the run')\n"
        "trainer.build_model = build_model\n"
    )
    proc, out = _train_with(tmp_path, lite_root, setup, {})
    assert proc.returncode == 128 + signal.SIGINT, proc.stderr
    assert proc.stderr.splitlines()[-1] == "error: stopped by SIGINT before training started"
    assert not os.path.exists(out / "latest.pdparams")


def test_stop_flag_second_signal_and_launcher_repeats(monkeypatch):
    from ppmirnet.engine import stop

    clock = [100.0]
    monkeypatch.setattr(stop.time, "monotonic", lambda: clock[0])
    with StopFlag() as flag:
        flag._handle(signal.SIGTERM, None)
        assert flag.name == "SIGTERM"
        clock[0] += 0.2  # paddle.distributed.launch repeating its SIGTERM
        flag._handle(signal.SIGTERM, None)
        clock[0] += 2.0  # the user insisting
        with pytest.raises(KeyboardInterrupt):
            flag._handle(signal.SIGINT, None)
        assert flag.name == "SIGTERM"


def test_every_card_stops_at_the_same_step_under_distributed_launch(lite_root, tmp_path):
    """Ctrl-C reaches the launcher, which sends SIGTERM to each rank (repeatedly)."""
    out, logs = tmp_path / "run", tmp_path / "launch"
    proc = launch_training(_long_run(lite_root, out, **{"DataLoader.Train.sampler.batch_size": 2}),
                           logs, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (os.path.isfile(logs / "workerlog.1")
                   and len(train_lines(read(logs / "workerlog.0"))) >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        tic = time.monotonic()
        proc.send_signal(signal.SIGINT)  # the launcher only: the ranks run in sessions of their own
        proc.wait(timeout=60)
        seconds = time.monotonic() - tic
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    steps = []
    for rank in (0, 1):
        log = read(logs / f"workerlog.{rank}")
        assert "Traceback" not in log, log[-3000:]
        found = [m for m in STOPPED.finditer(log)]
        assert found and found[-1][1] == "SIGTERM", log[-2000:]
        steps.append(int(found[-1][5]))
    assert steps[0] == steps[1]
    _, _, states = ckpt.load_checkpoint(str(out / "latest"))
    assert int(states["global_step"]) == steps[0]
    assert seconds < 30, f"the launcher waited {seconds:.1f} s for the ranks"
    print(f"2 ranks: launcher exited {seconds:.2f} s after SIGINT, both at global step {steps[0]}")

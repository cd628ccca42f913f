"""The benchmark: exact MAC counting and the quick mode of benchmarks/run_benchmark.py."""

import json
import os
import statistics
import sys

import numpy as np
import paddle
import pytest

from helpers import ROOT, run_cli
from ppmirnet import processing
from ppmirnet.modeling import MIRNet, build_model

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from harness import PATHS, CountingRunner, MacCounter, _count_macs_at  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    paddle.seed(0)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    model.eval()
    return model, MacCounter(model)


@pytest.mark.parametrize("h, w", [(40, 56), (75, 100), (128, 64)])
def test_mac_formula_equals_hooked_count(tiny, h, w):
    model, counter = tiny
    padded = (-(-h // 8) * 8, -(-w // 8) * 8)
    assert counter(h, w) == _count_macs_at(model, *padded)
    assert counter(h, w, batch=3) == 3 * counter(h, w)


def test_default_model_macs_at_256():
    # About 479 GMACs of convolution plus ~2 GMACs for bilinear x2 written
    # as a fixed depthwise transposed convolution (and the blur filters).
    counter = MacCounter(MIRNet())
    assert counter(256, 256) == pytest.approx(481.10e9, rel=1e-4)
    assert counter(512, 512) == pytest.approx(4 * 481.10e9, rel=0.01)


def test_counting_runner_adds_every_tile(tiny):
    _, counter = tiny
    counting = CountingRunner(lambda b: b, counter)
    processing.run_tiled(counting, np.zeros((1, 3, 75, 100), np.float32), tile=48, overlap=8)
    # 2 rows of 48-pixel and 3 columns of 40-pixel tiles (processing.tile_layout).
    assert counting.macs == 6 * counter(48, 40)


def test_a_measured_command_reports_its_own_peak_not_its_parents():
    from harness import run_measured
    ballast = np.ones(300 * 2**20 // 8)  # this process now holds 300 MB more
    allocate = f"{sys.executable} -c".split() + ["import numpy as np; a = np.ones(200 * 2**20 // 8); print(a.size)"]
    code, out, err, peak = run_measured(allocate, dict(os.environ))
    assert (code, out) == (0, f"{200 * 2**20 // 8}\n")
    assert 200 < peak < 260  # its 200 MB array, the interpreter and numpy
    code, out, err, peak = run_measured(["sh", "-c", "echo no >&2; exit 3"], dict(os.environ))
    assert (code, out, err) == (3, "", "no\n") and peak < 20
    with pytest.raises(FileNotFoundError):
        run_measured(["/nonexistent/command"], dict(os.environ))
    assert ballast.size


FAKE_REFERENCE = """
import json, sys
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
repeats = int(args[args.index("--repeats") + 1])
for i in range(repeats):
    print(f"forward_seconds: {{0.5 / (i + 1)}}")
"""


# MIRNet runs every path and a reference; MIRNet-v2 the paths whose export
# or model differs by network (the others run the same code for both).
@pytest.mark.parametrize("network, paths", [("MIRNet", PATHS), ("MIRNetV2", ("openvino", "onnxruntime", "predict"))])
def test_quick_benchmark_runs_every_path(tmp_path, network, paths):
    out = tmp_path / "quick.json"
    work = tmp_path / "work"
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "fake_reference.py"
    script.write_text(FAKE_REFERENCE.format(log=str(log)))
    proc = run_cli("benchmarks/run_benchmark.py", "--quick", f"--output={out}", f"--network={network}",
                   f"--work_dir={work}", f"--paths={','.join(paths)}",
                   f"--reference=Fake={sys.executable} {script}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert "load average" in proc.stdout and "GFLOP/s" in proc.stdout
    assert result["quick"] is True and result["sgemm_gflops"]["1"] > 1.0
    assert result["arch"]["name"] == network
    counter = MacCounter(build_model(result["arch"]))
    rows = [r for r in result["rows"] if r["path"] != "Fake"]
    assert sorted({r["path"] for r in rows}) == sorted(paths)
    assert len(rows) == 2 * len(paths)
    for r in rows:
        assert r["seconds"] > 0 and r["peak_rss_mb"] > 10
        assert 0 < r["efficiency"] < 2
        assert r["gflops"] == pytest.approx(2 * r["macs"] / r["seconds"] / 1e9)
        if r["key"] == "64":
            assert r["macs"] == counter(64, 64)
        else:
            ys, th = processing.tile_layout(75, 48, 8)
            xs, tw = processing.tile_layout(100, 48, 8)
            assert r["macs"] == len(ys) * len(xs) * counter(th, tw) == 6 * counter(48, 40)
            assert r["estimated"] and r["timed_tiles"] == 3 and r["total_tiles"] == 6
    # The reference: one call, on the untiled 64x64 input at the plan's one
    # thread, with the network's arguments; its best forward is its time.
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 1
    args = dict(zip(calls[0][::2], calls[0][1::2]))
    assert json.loads(args["--arch"]) == result["arch"]
    assert [args[k] for k in ("--height", "--width", "--threads", "--warmup", "--repeats")] \
        == ["64", "64", "1", "1", "1"]
    ref = [r for r in result["rows"] if r["path"] == "Fake"]
    assert len(ref) == 1 and ref[0]["key"] == "64" and ref[0]["all_seconds"] == [0.5]
    assert ref[0]["seconds"] == 0.5 and ref[0]["macs"] == counter(64, 64)
    # The fake is a bare interpreter (about 10 MB here), started by a parent
    # that holds Paddle and a model: its peak is its own, not the parent's.
    assert 5 < ref[0]["peak_rss_mb"] < 40 and ref[0]["efficiency"] is None
    md = (tmp_path / "quick.md").read_text()
    assert md.startswith("Machine: ") and md.count("\n| ") == 2 + len(result["rows"]) - 1
    # Every input's fastest and leanest runtime reads 1.00x; the others their ratio to them.
    for key in ("64", "tiled"):
        case = [r for r in result["rows"] if r["key"] == key]
        best = min(r["seconds"] for r in case)
        for r in case:
            assert f"| {r['seconds']:.2f} | {r['seconds'] / best:.2f}x |" in md
    assert f"| 64x64 | Fake | 1 | 0.50 | {0.5 / min(r['seconds'] for r in result['rows'] if r['key'] == '64'):.2f}x |" in md
    # A work folder keeps its exported model: it is not reused for the other network.
    other = "MIRNet" if network == "MIRNetV2" else "MIRNetV2"
    proc = run_cli("benchmarks/run_benchmark.py", "--quick", f"--output={out}", f"--network={other}",
                   f"--work_dir={work}")
    assert proc.returncode == 1
    assert f"holds the {network} benchmark model, not {other}: give another --work_dir" in proc.stderr


def test_benchmark_rejects_unknown_path(tmp_path):
    proc = run_cli("benchmarks/run_benchmark.py", "--quick", "--paths=tensorflow", f"--output={tmp_path / 'x.json'}")
    assert proc.returncode == 1
    assert "error: unknown path 'tensorflow' in --paths" in proc.stderr


STEP = os.path.join(ROOT, "benchmarks", "train_step.py")


def test_training_section_times_every_peer_with_ratios(tmp_path):
    out = tmp_path / "train.json"
    # A second copy of ppmirnet's own step stands in for a reference step.
    proc = run_cli("benchmarks/run_benchmark.py", "--quick", "--sections=training", "--train_iters=3",
                   f"--train_reference=copy={sys.executable} {STEP}", f"--output={out}")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["training"]["rows"]
    assert [r["peer"] for r in rows] == ["ppmirnet", "copy"]
    for r in rows:
        assert r["case"] == "quick" and (r["n_feat"], r["batch"], r["patch"]) == (8, 2, 32)
        assert len(r["runs"]) == 2 and all(len(run) == 3 for run in r["runs"])
        # A run's time is the median of its iterations after the first; the best run is kept.
        assert r["seconds"] == pytest.approx(min(statistics.median(run[1:]) for run in r["runs"]), rel=1e-6)
        assert 100 < r["peak_rss_mb"] < 4000
    fastest = min(r["seconds"] for r in rows)
    assert [r["ratio_to_best"] for r in rows] == pytest.approx([r["seconds"] / fastest for r in rows])
    assert min(r["rss_ratio_to_best"] for r in rows) == 1.0
    md = (tmp_path / "train.md").read_text()
    assert "Training iterations:" in md and md.count("| quick (cpu, 2 thr) |") == 2


def test_training_reference_must_follow_the_protocol(tmp_path):
    proc = run_cli("benchmarks/run_benchmark.py", "--sections=training", "--train_reference=nocommand",
                   f"--output={tmp_path / 'x.json'}")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --train_reference must be NAME=COMMAND, got 'nocommand'"
    silent = f"{sys.executable} -c pass"
    proc = run_cli("benchmarks/run_benchmark.py", "--quick", "--sections=training", "--train_repeats=1",
                   "--train_iters=2", f"--train_reference=silent={silent}", f"--output={tmp_path / 'x.json'}")
    assert proc.returncode == 1
    assert "printed 0 iteration_seconds lines, expected 2" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_reference_must_follow_the_protocol(tmp_path):
    silent = f"{sys.executable} -c pass"
    work = f"--work_dir={tmp_path / 'work'}"
    proc = run_cli("benchmarks/run_benchmark.py", "--quick", "--paths=onnxruntime", work,
                   f"--reference=silent={silent}", f"--output={tmp_path / 'x.json'}")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: reference 'silent' printed 0 forward_seconds lines, expected 1"
    assert not (tmp_path / "x.json").exists()
    for spec, message in [("nocommand", "--reference must be NAME=COMMAND, got 'nocommand'"),
                          (f"openvino={silent}", "--reference 'openvino': the name of a runtime this "
                                                 "benchmark measures; give the reference another name"),
                          ("gone=/nonexistent/python", "reference 'gone' cannot start '/nonexistent/python'")]:
        proc = run_cli("benchmarks/run_benchmark.py", "--quick", "--paths=onnxruntime", work,
                       f"--reference={spec}", f"--output={tmp_path / 'x.json'}")
        assert proc.returncode == 1
        assert proc.stderr.startswith(f"error: {message}"), proc.stderr


def test_the_official_reference_builds_the_same_configuration():
    from official_forward import official_arguments

    assert official_arguments({"name": "MIRNet", "n_feat": 64, "n_RRG": 3, "n_MSRB": 2, "in_channels": 3}) \
        == ("networks.MIRNet_model", "MIRNet", {"n_feat": 64, "n_RRG": 3, "n_MSRB": 2, "in_channels": 3})
    # The official MIRNet_v2 spells the input channels inp_channels.
    module, cls, kwargs = official_arguments({"name": "MIRNetV2", "in_channels": 6, "n_feat": 80, "task": None})
    assert (module, cls) == ("basicsr.models.archs.mirnet_v2_arch", "MIRNet_v2")
    assert kwargs == {"inp_channels": 6, "n_feat": 80, "task": None}
    with pytest.raises(ValueError, match="no official model for 'Restormer'"):
        official_arguments({"name": "Restormer"})

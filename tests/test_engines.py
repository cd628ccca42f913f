"""Engines: OpenVINO parity, every engine run from weights through the export cache, the choice."""

import os

import numpy as np
import paddle
import pytest

from helpers import ROOT
from ppmirnet import Restorer, processing
from ppmirnet.engine.checkpoint import save_weights
from ppmirnet.errors import UserError
from ppmirnet.inference import engines
from ppmirnet.inference.openvino_runtime import OpenVinoPredictor
from ppmirnet.modeling import MIRNet, MIRNetV2, arch_section

# Narrow and shallow (MIRNet-v2 always has 4 groups): every op of the network, exported fast.
NETWORKS = {
    "mirnet": lambda: MIRNet(n_feat=8, n_RRG=1, n_MSRB=1),
    "mirnetv2": lambda: MIRNetV2(n_feat=16, n_MRB=1),
    "defocus": lambda: MIRNetV2(n_feat=16, n_MRB=1, in_channels=6, task="defocus_deblurring"),
}
EXPORTED = ("paddle-inference", "onnx", "openvino")
# (batch, height, width): one size every network's multiple divides, one odd.
SHAPES = [(2, 32, 48), (1, 37, 45)]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The export cache of this module: never the user's ~/.cache."""
    path = tmp_path_factory.mktemp("ppmirnet_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PPMIRNET_HOME", str(path))
        yield path


@pytest.fixture(scope="module", params=list(NETWORKS))
def network(request, home, tmp_path_factory):
    """``(name, dygraph model, weights file recording its network)``."""
    paddle.seed(7)
    model = NETWORKS[request.param]()
    model.eval()
    weights = str(tmp_path_factory.mktemp(request.param) / "w.pdparams")
    save_weights(weights, model.state_dict(), arch_section(model))
    return request.param, model, weights, {}


def _restorer(network, engine):
    """The network's Restorer on ``engine``, tiled, with the self-ensemble; made once per module."""
    _, _, weights, made = network
    if engine not in made:
        made[engine] = Restorer(weights, engine=engine, tile=32, tile_overlap=8, ensemble=True, cpu_threads=2)
    return made[engine]


def _reference(model, x):
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


@pytest.mark.parametrize("engine", EXPORTED)
def test_every_engine_run_from_weights_matches_dygraph(network, engine):
    name, model, _, _ = network
    restorer = _restorer(network, engine)
    assert restorer.engine == engine and restorer.device == "cpu"
    channels = model.arch["in_channels"]
    assert restorer.dual_pixel == (channels == 6)
    rng = np.random.default_rng(0)
    for batch, h, w in SHAPES:
        x = rng.random((batch, channels, h, w), dtype=np.float32)
        got = restorer.runner.runner(x)  # the engine's own runner, inside the self-ensemble
        assert got.shape == (batch, 3, h, w)
        # Measured: below 2e-6 on every engine.
        assert np.abs(got - _reference(model, x)).max() < 1e-4, (name, engine, h, w)


def test_openvino_reads_the_onnx_export_too(tmp_path):
    from ppmirnet.export import export_inference_model
    from ppmirnet.inference.onnx_runtime import export_onnx

    paddle.seed(3)
    model = MIRNetV2(n_feat=16, n_MRB=1)
    model.eval()
    export_inference_model(model, str(tmp_path))
    onnx_file = export_onnx(str(tmp_path), str(tmp_path / "m.onnx"))
    runner = OpenVinoPredictor(onnx_file)
    x = np.random.default_rng(1).random((1, 3, 37, 45), dtype=np.float32)
    assert np.abs(runner(x) - _reference(model, x)).max() < 1e-4
    assert runner.describe()["precision"] == "fp32"
    assert runner.describe()["runtime"].startswith("openvino 2026.")


def test_openvino_refuses_a_program_exported_for_paddle_inference(tmp_path):
    from ppmirnet.export import export_inference_model

    model = MIRNetV2(n_feat=16, n_MRB=1)
    export_inference_model(model, str(tmp_path), legacy_format=True)
    with pytest.raises(UserError, match="No creator found for .*export it with ppmirnet export --for_openvino"):
        OpenVinoPredictor(str(tmp_path))
    with pytest.raises(UserError, match="OpenVINO model not found"):
        OpenVinoPredictor(str(tmp_path / "absent.onnx"))


@pytest.mark.parametrize("engine", ("dygraph",) + EXPORTED)
def test_tiles_ensemble_and_dual_pixel_pairs_on_every_engine(network, engine):
    """Restorer on a uint8 image (a left/right pair for the defocus model), tiled, with the x8
    self-ensemble: every engine gives the dygraph network's result."""
    name, model, _, _ = network
    rng = np.random.default_rng(2)
    left = (rng.random((45, 61, 3)) * 255).astype(np.uint8)
    right = (rng.random((45, 61, 3)) * 255).astype(np.uint8) if name == "defocus" else None
    restorer = _restorer(network, engine)
    got = restorer(left, right=right)

    class Direct:  # the network itself, outside Restorer and every engine
        in_channels = model.arch["in_channels"]

        def __call__(self, batch):
            return _reference(model, batch)

    from ppmirnet.engine.dygraph import SelfEnsemble

    image = processing.from_array(left)[0]
    if right is not None:
        image = processing.stack_views(image, processing.from_array(right, "right")[0])
    expected = processing.restore(SelfEnsemble(Direct()), image, tile=32, overlap=8)
    expected = np.round(expected * 255)
    assert got.shape == left.shape and got.dtype == np.uint8
    # The same float result within 1e-4 rounds to at most one grey level apart.
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


# ------------------------------------------------------------------ the export cache


@pytest.fixture
def weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PPMIRNET_HOME", str(tmp_path / "home"))
    paddle.seed(11)
    model = MIRNetV2(n_feat=16, n_MRB=1)
    path = str(tmp_path / "a.pdparams")
    save_weights(path, model.state_dict(), arch_section(model))
    return path


def test_cache_is_made_once_and_reused(weights_file, tmp_path):
    lines = []
    first = Restorer(weights_file, engine="openvino", log=lines.append)
    exports = tmp_path / "home" / "exports"
    (entry,) = os.listdir(exports)  # nothing else: no temporary folder left behind
    assert entry.startswith("openvino-")
    assert sorted(os.listdir(exports / entry)) == ["export.json", "inference.pdiparams", "inference.pdmodel"]
    (made,) = [line for line in lines if "exported" in line]
    assert made.startswith(f"openvino: exported {weights_file} in ")
    assert made.endswith(f" s to {exports / entry} (later runs reuse it)")
    stamp = os.stat(exports / entry / "inference.pdmodel").st_mtime_ns

    lines.clear()
    second = Restorer(weights_file, engine="openvino", log=lines.append)
    assert lines == ["device: auto -> cpu (OpenVINO runs on the CPU here)",
                     f"openvino: using the export of {weights_file} in {exports / entry}"]
    assert os.listdir(exports) == [entry]
    assert os.stat(exports / entry / "inference.pdmodel").st_mtime_ns == stamp
    x = np.random.default_rng(4).random((1, 3, 24, 40), dtype=np.float32)
    np.testing.assert_array_equal(first.runner(x), second.runner(x))


def test_cache_key_follows_the_content_and_versions(weights_file, tmp_path, monkeypatch):
    key = engines.cache_key(weights_file, "openvino")
    assert len(key) == 24
    # The same content elsewhere, without the extension: the same key.
    copy = tmp_path / "elsewhere" / "b.pdparams"
    copy.parent.mkdir()
    copy.write_bytes(open(weights_file, "rb").read())
    assert engines.cache_key(str(copy)[:-len(".pdparams")], "openvino") == key
    assert engines.cache_key(weights_file, "onnx") != key
    assert engines.cache_key(weights_file, "openvino", arch={"name": "MIRNetV2"}) != key
    # Other weights (one byte changed at the end of the file).
    data = bytearray(open(weights_file, "rb").read())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    assert engines.cache_key(str(copy), "openvino") != key
    # Another OpenVINO (or ppmirnet, paddle) version.
    versions = engines.library_versions("openvino")
    assert set(versions) == {"ppmirnet", "paddlepaddle", "openvino"} and versions["openvino"] == "2026.4.1"
    monkeypatch.setattr(engines, "library_versions", lambda engine: dict(versions, openvino="2027.0"))
    assert engines.cache_key(weights_file, "openvino") != key


def test_an_interrupted_export_leaves_no_entry(weights_file, tmp_path, monkeypatch):
    def fail(model, folder, engine):
        open(os.path.join(folder, "inference.pdmodel"), "w").close()  # half an export
        raise KeyboardInterrupt

    monkeypatch.setattr(engines, "_write_export", fail)
    with pytest.raises(KeyboardInterrupt):
        Restorer(weights_file, engine="openvino")
    assert os.listdir(tmp_path / "home" / "exports") == []


def test_default_home(monkeypatch):
    monkeypatch.delenv("PPMIRNET_HOME", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent/user")
    assert engines.home() == "/nonexistent/user/.cache/ppmirnet"
    monkeypatch.setenv("PPMIRNET_HOME", "/data/ppm")
    assert engines.home() == "/data/ppm"


# ------------------------------------------------------------------ the choice


@pytest.mark.parametrize("present, expected", [
    ({"openvino", "onnx", "paddle-inference", "dygraph"}, "openvino"),
    ({"onnx", "paddle-inference", "dygraph"}, "onnx"),
    ({"paddle-inference", "dygraph"}, "paddle-inference"),
    ({"dygraph"}, "dygraph"),
])
def test_auto_on_cpu_takes_the_fastest_installed(monkeypatch, present, expected):
    monkeypatch.setattr(engines, "installed", lambda engine: engine in present)
    assert engines.choose_engine("auto", "cpu") == expected
    # On a GPU the default stays dygraph, whatever is installed.
    assert engines.choose_engine("auto", "gpu") == "dygraph"
    for engine in engines.ENGINES:
        assert engines.choose_engine(engine, "cpu") == engine


def test_installed_looks_for_the_modules(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name))
    assert not engines.installed("openvino")
    assert engines.installed("onnx") and engines.installed("dygraph")
    assert engines.choose_engine("auto", "cpu") == "onnx"


def test_restorer_weights_default_to_auto(weights_file, monkeypatch):
    import ppmirnet.restorer as restorer_module

    monkeypatch.setattr(restorer_module, "_auto_device", lambda runtime: ("cpu", "device: auto -> cpu"))
    # What is built for the chosen engine (export and runner are tested above): recorded only.
    exported, runners = [], []
    monkeypatch.setattr(engines, "exported_model",
                        lambda weights, engine, config=None, log=print: exported.append(engine) or "m")
    monkeypatch.setattr(engines, "build_runner",
                        lambda engine, model, device="cpu", cpu_threads=2, precision="fp32":
                        runners.append(engine) or (lambda b: b))
    assert Restorer(weights_file).engine == "openvino"
    monkeypatch.setattr(engines, "installed", lambda engine: engine in ("paddle-inference", "dygraph"))
    assert Restorer(weights_file).engine == "paddle-inference"
    assert exported == runners == ["openvino", "paddle-inference"]
    # A machine whose Paddle sees a GPU: dygraph on the GPU, as before engines could be chosen.
    monkeypatch.setattr(engines, "installed", lambda engine: True)
    monkeypatch.setattr(restorer_module, "_auto_device", lambda runtime: ("gpu", "device: auto -> gpu"))
    built = []
    monkeypatch.setattr(Restorer, "_dygraph", lambda self, *args: built.append(self.device) or (lambda b: b))
    restorer = Restorer(weights_file)
    assert (restorer.engine, restorer.device, built) == ("dygraph", "gpu", ["gpu"])


def test_restorer_engine_errors(weights_file, tmp_path):
    with pytest.raises(UserError, match="engine must be one of dygraph, paddle-inference, onnx, openvino, auto, "
                                        "got 'tensorrt'"):
        Restorer(weights_file, engine="tensorrt")
    with pytest.raises(UserError, match="engine 'dygraph' runs weights, but onnx_file was given"):
        Restorer(onnx_file=str(tmp_path / "m.onnx"), engine="dygraph")
    with pytest.raises(UserError, match="engine 'onnx' and runtime 'dygraph' differ"):
        Restorer(weights_file, engine="onnx", runtime="dygraph")
    with pytest.raises(UserError, match="the openvino engine runs on CPU here"):
        Restorer(weights_file, engine="openvino", device="gpu")


def test_predict_runs_the_fastest_engine_and_reuses_its_export(weights_file, tmp_path, capsys):
    import cv2

    from helpers import run_tool_in_process

    image = (np.random.default_rng(6).random((29, 43, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    outputs = {}
    for run, engine in enumerate(["auto", "auto", "dygraph"]):
        out = tmp_path / f"out{run}"
        code, stdout, stderr = run_tool_in_process(
            "predict", ["--weights", weights_file, "--input", str(tmp_path / "in.png"), "--output", str(out),
                        "--engine", engine], capsys)
        assert code == 0, stderr
        expected = {0: ["openvino: exported", "engine: openvino on cpu"],
                    1: ["openvino: using the export", "engine: openvino on cpu"],
                    2: ["engine: dygraph on cpu"]}[run]
        assert all(line in stdout for line in expected), stdout
        outputs[run] = cv2.imread(str(out / "in.png"))
    assert np.array_equal(outputs[0], outputs[1])
    assert np.abs(outputs[0].astype(int) - outputs[2].astype(int)).max() <= 1
    from helpers import run_cli

    proc = run_cli("tools/predict.py", "--weights", weights_file, "--input", str(tmp_path / "in.png"),
                   "--output", str(tmp_path / "x"), "--engine", "fast")
    assert proc.returncode == 2 and "argument --engine: invalid choice: 'fast'" in proc.stderr


def test_deploy_openvino_cli(weights_file, tmp_path):
    """ppmirnet export --for_openvino, then deploy/openvino/infer.py with Paddle unimportable."""
    import subprocess
    import sys

    import cv2

    from helpers import run_cli

    model_dir = tmp_path / "ov"
    proc = run_cli("tools/export_model.py", "-c", "configs/mirnetv2_lite.yaml", "-o",
                   f"Global.pretrained_model={weights_file}", "--save_dir", str(model_dir), "--for_openvino")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(model_dir)) == ["inference.pdiparams", "inference.pdmodel"]
    images = tmp_path / "images"
    images.mkdir()
    image = (np.random.default_rng(8).random((33, 50, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(images / "x.png"), image)
    blocker = tmp_path / "nopaddle"
    blocker.mkdir()
    (blocker / "paddle.py").write_text("raise ImportError('paddle is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, "deploy/openvino/infer.py", f"--model={model_dir}",
                           f"--image_dir={images}", f"--output_dir={tmp_path / 'out'}", "--benchmark=True"],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "runtime: openvino 2026." in proc.stdout and "paddle_version: None" in proc.stdout
    got = cv2.imread(str(tmp_path / "out" / "x.png"))[:, :, ::-1].astype(int)
    dygraph = Restorer(weights_file, engine="dygraph")(image[:, :, ::-1])
    assert np.abs(got - dygraph.astype(int)).max() <= 1


# ------------------------------------------------------------------ bf16 on OpenVINO


def test_bf16_runs_openvino_in_bfloat16_on_cpus_that_have_it(weights_file):
    from ppmirnet.inference.openvino_runtime import cpu_capabilities

    if "BF16" not in cpu_capabilities():
        pytest.skip("this CPU has no bfloat16 units: the refusal is tested below on every CPU")
    fp32 = Restorer(weights_file, engine="openvino")
    bf16 = Restorer(weights_file, engine="openvino", precision="bf16")
    assert bf16.runner.describe()["precision"] == "bf16" and "precision='bf16'" in repr(bf16)
    x = np.random.default_rng(0).random((1, 3, 45, 61), dtype=np.float32)
    gap = np.abs(fp32.runner(x) - bf16.runner(x)).max()
    # Measured 0.008 (Intel Xeon with AMX); float32 engines agree within 2e-6, so this is bfloat16.
    assert 1e-3 < gap < 0.02, gap
    image = (np.random.default_rng(6).random((45, 61, 3)) * 255).astype(np.uint8)
    assert np.abs(fp32(image).astype(int) - bf16(image).astype(int)).max() <= 3  # measured 2


def test_precision_errors_come_before_any_export(weights_file, tmp_path, monkeypatch):
    from ppmirnet.inference import openvino_runtime

    with pytest.raises(UserError, match="precision bf16 runs on the openvino engine only, not dygraph: "
                                        "add --engine openvino, or leave out --precision"):
        Restorer(weights_file, engine="dygraph", precision="bf16")
    with pytest.raises(UserError, match="precision bf16 runs on the openvino engine only, not onnx"):
        Restorer(weights_file, engine="onnx", precision="bf16")
    with pytest.raises(UserError, match="precision must be one of bf16, fp32, got 'fp16'"):
        Restorer(weights_file, precision="fp16")
    # A CPU without bfloat16 units, where OpenVINO would silently compute in f32.
    monkeypatch.setattr(openvino_runtime, "cpu_capabilities", lambda core=None: ["FP32", "INT8", "BIN"])
    with pytest.raises(UserError, match=r"--precision bf16 needs a CPU with bfloat16 units \(AMX or "
                                        r"AVX512_BF16\); OpenVINO finds FP32, INT8, BIN here: use fp32"):
        Restorer(weights_file, engine="openvino", precision="bf16")
    with pytest.raises(UserError, match="needs a CPU with bfloat16 units"):
        OpenVinoPredictor(str(tmp_path / "absent.onnx"), precision="bf16")
    assert not (tmp_path / "home" / "exports").exists()


def test_predict_precision_flag(weights_file, tmp_path, capsys):
    import cv2

    from helpers import run_tool_in_process
    from ppmirnet.inference.openvino_runtime import cpu_capabilities

    image = (np.random.default_rng(6).random((29, 43, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    args = ["--weights", weights_file, "--input", str(tmp_path / "in.png"), "--precision", "bf16"]
    code, stdout, stderr = run_tool_in_process("predict", args + ["--output", str(tmp_path / "a"),
                                                                  "--engine", "onnx"], capsys)
    assert code == 1 and stderr.strip().splitlines() == [
        "error: precision bf16 runs on the openvino engine only, not onnx: add --engine openvino, "
        "or leave out --precision"]
    assert not (tmp_path / "a").exists()
    code, stdout, stderr = run_tool_in_process("predict", args + ["--output", str(tmp_path / "b")], capsys)
    if "BF16" in cpu_capabilities():
        assert code == 0 and "engine: openvino on cpu in bf16" in stdout, stderr
        got = cv2.imread(str(tmp_path / "b" / "in.png")).astype(int)
        fp32 = Restorer(weights_file, engine="openvino")(image[:, :, ::-1])[:, :, ::-1].astype(int)
        assert 0 < np.abs(got - fp32).max() <= 3
    else:
        assert code == 1 and "needs a CPU with bfloat16 units" in stderr and not (tmp_path / "b").exists()


def test_deploy_openvino_bf16_flag(weights_file, tmp_path):
    import cv2

    from helpers import run_cli
    from ppmirnet.inference.openvino_runtime import cpu_capabilities

    model_dir = tmp_path / "ov"
    proc = run_cli("tools/export_model.py", "-c", "configs/mirnetv2_lite.yaml", "-o",
                   f"Global.pretrained_model={weights_file}", "--save_dir", str(model_dir), "--for_openvino")
    assert proc.returncode == 0, proc.stderr
    image = (np.random.default_rng(8).random((33, 50, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), image)
    proc = run_cli("deploy/openvino/infer.py", f"--model={model_dir}", f"--image_dir={tmp_path / 'x.png'}",
                   f"--output_dir={tmp_path / 'out'}", "--precision=bf16", "--benchmark=True")
    if "BF16" in cpu_capabilities():
        assert proc.returncode == 0 and "precision: bf16" in proc.stdout, proc.stderr
        got = cv2.imread(str(tmp_path / "out" / "x.png"))[:, :, ::-1].astype(int)
        fp32 = Restorer(weights_file, engine="openvino")(image[:, :, ::-1]).astype(int)
        assert 0 < np.abs(got - fp32).max() <= 3
    else:
        assert proc.returncode == 1 and "needs a CPU with bfloat16 units" in proc.stderr
        assert not (tmp_path / "out").exists()

"""ONNX deployment: paddle2onnx export with dynamic shapes, onnxruntime parity, the CLIs."""

import os
import subprocess
import sys

import cv2
import numpy as np
import onnx
import paddle
import pytest

from helpers import ROOT, run_cli
from ppmirnet import processing
from ppmirnet.errors import UserError
from ppmirnet.export import export_inference_model
from ppmirnet.inference import PaddlePredictor
from ppmirnet.inference.onnx_runtime import OnnxPredictor, export_onnx
from ppmirnet.modeling import MIRNet


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny MIRNet exported for Paddle Inference and converted to ONNX."""
    paddle.seed(5)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    model.eval()
    model_dir = str(tmp_path_factory.mktemp("model"))
    export_inference_model(model, model_dir)
    onnx_file = export_onnx(model_dir, os.path.join(model_dir, "mirnet.onnx"))
    return model_dir, onnx_file, PaddlePredictor(model_dir)


def test_export_has_dynamic_batch_height_width(models):
    _, onnx_file, _ = models
    model = onnx.load(onnx_file)
    onnx.checker.check_model(model)
    (inp,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    # No dead weights left for onnxruntime to warn about.
    used = {name for node in model.graph.node for name in node.input}
    assert all(init.name in used for init in model.graph.initializer)


def test_onnxruntime_matches_paddle_inference(models):
    _, onnx_file, paddle_predictor = models
    ort_predictor = OnnxPredictor(onnx_file, cpu_threads=2)
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 75, 100), (1, 3, 33, 17), (1, 3, 64, 64)]:
        batch = rng.random(shape, dtype=np.float32)
        out = ort_predictor(batch)
        assert out.shape == shape
        np.testing.assert_allclose(out, paddle_predictor(batch), atol=1e-4, rtol=0)
    image = rng.random((75, 100, 3), dtype=np.float32)
    np.testing.assert_allclose(processing.restore(ort_predictor, image, tile=48, overlap=16),
                               processing.restore(paddle_predictor, image, tile=48, overlap=16),
                               atol=1e-4, rtol=0)


def test_export_from_legacy_program(models, tmp_path):
    model_dir, onnx_file, _ = models
    legacy_dir = str(tmp_path / "legacy")
    # The legacy export compares its parameter file with the PIR one byte for
    # byte, which only holds for the first model built in a process: use a
    # fresh one, as tools/export_model.py does.
    code = ("from ppmirnet.modeling import MIRNet; import paddle; "
            "from ppmirnet.export import export_inference_model; paddle.seed(5); "
            f"export_inference_model(MIRNet(n_feat=8, n_RRG=1, n_MSRB=1), {legacy_dir!r}, legacy_format=True)")
    proc = run_cli("-c", code)
    assert proc.returncode == 0, proc.stderr
    legacy_onnx = export_onnx(legacy_dir, str(tmp_path / "legacy.onnx"), prefer_legacy=True)
    batch = np.random.default_rng(1).random((1, 3, 40, 56), dtype=np.float32)
    np.testing.assert_allclose(OnnxPredictor(legacy_onnx)(batch), OnnxPredictor(onnx_file)(batch),
                               atol=1e-4, rtol=0)


def test_onnx_cli_matches_paddle_cli_and_needs_no_paddle(models, tmp_path):
    model_dir, _, _ = models
    rng = np.random.default_rng(2)
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "x.png"), rng.integers(0, 256, (45, 70, 3), dtype=np.uint8))
    cv2.imwrite(str(images / "y.png"), rng.integers(0, 65536, (32, 40), dtype=np.uint16))

    onnx_file = tmp_path / "cli.onnx"
    proc = run_cli("deploy/onnx/export_onnx.py", f"--model_dir={model_dir}", f"--save_file={onnx_file}")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {onnx_file}" in proc.stdout and onnx_file.is_file()

    # A user without Paddle: block its import in the onnxruntime CLI.
    blocker = tmp_path / "nopaddle"
    blocker.mkdir()
    (blocker / "paddle.py").write_text("raise ImportError('paddle is not installed here')\n")
    env_path = f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [sys.executable, "deploy/onnx/infer.py", f"--onnx_file={onnx_file}", f"--image_dir={images}",
         f"--output_dir={tmp_path / 'ort'}", "--benchmark=True"],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=env_path))
    assert proc.returncode == 0, proc.stderr
    assert "runtime: onnxruntime" in proc.stdout and "paddle_version: None" in proc.stdout

    proc = run_cli("deploy/inference/infer.py", f"--model_dir={model_dir}", f"--image_dir={images}",
                   f"--output_dir={tmp_path / 'pd'}")
    assert proc.returncode == 0, proc.stderr
    for name in ("x.png", "y.png"):
        a = cv2.imread(str(tmp_path / "ort" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "pd" / name), cv2.IMREAD_UNCHANGED)
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_onnx_errors(tmp_path):
    with pytest.raises(UserError, match="ONNX model not found"):
        OnnxPredictor(str(tmp_path / "missing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="onnxruntime cannot load"):
        OnnxPredictor(str(bad))
    with pytest.raises(UserError, match="no exported model"):
        export_onnx(str(tmp_path), str(tmp_path / "x.onnx"))
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("failure", [
    "raise ImportError('No module named paddle2onnx')",
    # What paddle2onnx 2.x does at import on Paddle 2.6.
    "raise ValueError('paddle2onnx 2.x requires paddlepaddle >= 3.0.0')",
])
def test_onnx_export_names_the_paddle2onnx_to_install(tmp_path, monkeypatch, failure):
    from ppmirnet.compat import paddle2onnx_requirement
    from ppmirnet.errors import MissingDependencyError

    fake = tmp_path / "site" / "paddle2onnx"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(failure + "\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "paddle2onnx", raising=False)
    with pytest.raises(MissingDependencyError, match=f"pip install {paddle2onnx_requirement()}"):
        export_onnx(str(tmp_path), str(tmp_path / "x.onnx"))
    assert paddle2onnx_requirement() == (
        "paddle2onnx==2.1.0" if paddle.__version__.startswith("3.") else "paddle2onnx==1.3.1")

"""MIRNet-v2 through every deployment path: export (both formats), Paddle Inference, ONNX, tools."""

import os

import numpy as np
import paddle
import pytest

from ppmirnet.export import export_inference_model
from ppmirnet.inference.onnx_runtime import OnnxPredictor, export_onnx
from ppmirnet.inference.paddle_predictor import PaddlePredictor, PredictorOptions
from ppmirnet.modeling import MIRNetV2
import cv2

from ppmirnet.engine.checkpoint import read_weights
from tests.helpers import ROOT, run_cli

SMALL = os.path.join(ROOT, "tests", "fixtures", "mirnetv2_small")
SIZES = [(32, 48), (37, 45)]  # one a multiple of 4, one odd (padded inside the program)


def _model(**kw):
    paddle.seed(3)
    model = MIRNetV2(n_feat=16, n_MRB=1, **kw)
    model.eval()
    return model


@pytest.fixture(scope="module", params=["rgb", "defocus"])
def exported(request, tmp_path_factory):
    kw = {} if request.param == "rgb" else dict(in_channels=6, task="defocus_deblurring")
    model = _model(**kw)
    out = tmp_path_factory.mktemp(f"v2_{request.param}")
    written = export_inference_model(model, str(out), legacy_format=True)
    assert sorted(os.path.basename(p) for p in written) == [
        "inference.json", "inference.pdiparams", "inference.pdmodel"]
    export_onnx(str(out), str(out / "model.onnx"))
    return model, out


@pytest.mark.parametrize("mkldnn, legacy", [(True, False), (True, True), (False, False),
                                            (False, True)])
def test_paddle_inference_matches_dygraph(exported, mkldnn, legacy):
    model, out = exported
    runner = PaddlePredictor(str(out), PredictorOptions(enable_mkldnn=mkldnn, prefer_legacy=legacy),
                             quiet=True)
    assert runner.program.endswith(".pdmodel" if legacy else ".json")
    rng = np.random.default_rng(0)
    for batch, (h, w) in zip((1, 2), SIZES):
        x = rng.random((batch, model.arch["in_channels"], h, w), dtype=np.float32)
        ref = model(paddle.to_tensor(x)).numpy()
        got = runner(x)
        assert got.shape == (batch, 3, h, w)
        # Measured: below 2e-6.
        assert np.abs(got - ref).max() < 1e-4


def test_onnx_matches_dygraph(exported):
    model, out = exported
    runner = OnnxPredictor(str(out / "model.onnx"))
    assert runner.in_channels == model.arch["in_channels"]
    rng = np.random.default_rng(1)
    for batch, (h, w) in zip((2, 1), SIZES):
        x = rng.random((batch, model.arch["in_channels"], h, w), dtype=np.float32)
        ref = model(paddle.to_tensor(x)).numpy()
        got = runner(x)
        assert got.shape == (batch, 3, h, w) and np.abs(got - ref).max() < 1e-4


def test_tools_export_and_infer_converted_weights(tmp_path):
    """convert -> export_model (a MIRNet-v2 config) -> infer.py and ONNX infer.py on an odd-sized PNG."""
    weights = tmp_path / "v2.pdparams"
    proc = run_cli("tools/convert_weights.py", "--src", os.path.join(SMALL, "weights.npz"),
                   "--dst", str(weights))
    assert proc.returncode == 0, proc.stderr
    model_dir = tmp_path / "inference"
    proc = run_cli("tools/export_model.py", "-c", "configs/mirnetv2_lite.yaml", "-o",
                   f"Global.pretrained_model={weights}", "--save_dir", str(model_dir),
                   "--legacy_format")
    assert proc.returncode == 0, proc.stderr
    rng = np.random.default_rng(2)
    image = (rng.random((29, 43, 3)) * 255).astype(np.uint8)
    os.makedirs(tmp_path / "in")
    cv2.imwrite(str(tmp_path / "in" / "a.png"), image[:, :, ::-1])
    model = MIRNetV2(n_feat=16)
    model.set_state_dict(read_weights(str(weights))[1])
    model.eval()
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    # The deployment pipeline hands the image over as it is: the program pads to MIRNet-v2's
    # multiple of 4 itself, exactly as the dygraph network does.
    ref = model(paddle.to_tensor(x)).numpy()[0]
    ref = np.clip(ref.transpose(1, 2, 0), 0, 1)
    ref = np.round(ref * 255).astype(np.int16)
    proc = run_cli("deploy/inference/infer.py", "--model_dir", str(model_dir), "--image_dir",
                   str(tmp_path / "in"), "--output_dir", str(tmp_path / "pd"))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("deploy/onnx/export_onnx.py", "--model_dir", str(model_dir), "--save_file",
                   str(tmp_path / "m.onnx"))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("deploy/onnx/infer.py", "--onnx_file", str(tmp_path / "m.onnx"), "--image_dir",
                   str(tmp_path / "in"), "--output_dir", str(tmp_path / "ox"))
    assert proc.returncode == 0, proc.stderr
    for folder in ("pd", "ox"):
        out = cv2.imread(str(tmp_path / folder / "a.png"))[:, :, ::-1].astype(np.int16)
        assert out.shape == image.shape
        # 8-bit outputs of the same float result: at most one rounding step apart.
        assert np.abs(out - ref).max() <= 1


def test_every_runtime_gives_the_unpadded_network_output_through_the_pipeline(exported):
    """A size that is a multiple of 4 but not of 8 needs no padding for MIRNet-v2: the dygraph
    pipeline gives exactly the network's output, and the exported programs agree with it."""
    from ppmirnet import processing
    from ppmirnet.engine.dygraph import DygraphRunner

    model, out = exported
    rng = np.random.default_rng(5)
    image = rng.random((36, 44, model.arch["in_channels"]), dtype=np.float32)
    direct = model(paddle.to_tensor(processing.to_batch([image]))).numpy()[0].transpose(1, 2, 0)
    dygraph = processing.restore(DygraphRunner(model), image)
    np.testing.assert_array_equal(dygraph, np.clip(direct, 0, 1))
    for runner in (PaddlePredictor(str(out), quiet=True), OnnxPredictor(str(out / "model.onnx"))):
        assert runner.in_channels == model.arch["in_channels"]
        assert np.abs(processing.restore(runner, image) - dygraph).max() < 1e-4

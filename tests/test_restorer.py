"""The Python API: ``from ppmirnet import Restorer`` on its three runtimes, arrays and files."""

import os
import subprocess
import sys

import cv2
import numpy as np
import paddle
import pytest

from helpers import ROOT
from ppmirnet import Restorer, processing
from ppmirnet.engine.checkpoint import save_weights
from ppmirnet.engine.dygraph import DygraphRunner, SelfEnsemble
from ppmirnet.errors import UserError
from ppmirnet.export import export_inference_model
from ppmirnet.inference.onnx_runtime import export_onnx
from ppmirnet.modeling import MIRNet

LITE_ARCH = dict(n_feat=8, n_RRG=1, n_MSRB=1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tiny MIRNet as recorded weights, a Paddle Inference export and an ONNX file."""
    paddle.seed(11)
    model = MIRNet(**LITE_ARCH)
    model.eval()
    folder = tmp_path_factory.mktemp("restorer")
    weights = str(folder / "lite.pdparams")
    save_weights(weights, model.state_dict(), {"name": "MIRNet", **model.arch})
    model_dir = str(folder / "inference")
    export_inference_model(model, model_dir)
    onnx_file = export_onnx(model_dir, str(folder / "lite.onnx"))
    return {"weights": weights, "model_dir": model_dir, "onnx_file": onnx_file, "model": model}


@pytest.fixture(scope="module")
def restorers(models):
    return {
        "dygraph": Restorer(models["weights"], device="cpu", engine="dygraph"),
        "paddle-inference": Restorer(model_dir=models["model_dir"], device="cpu"),
        "onnx": Restorer(onnx_file=models["onnx_file"], device="cpu"),
    }


def test_importing_ppmirnet_loads_neither_paddle_nor_opencv():
    code = ("import sys, ppmirnet; heavy = [m for m in ('paddle', 'cv2', 'ppmirnet.restorer') "
            "if m in sys.modules]; print(heavy); from ppmirnet import Restorer; "
            "print(Restorer.__module__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "ppmirnet.restorer"]


def test_dygraph_restorer_is_the_network_output(models, restorers):
    """Recorded weights alone rebuild the network: the output is the model's own."""
    rng = np.random.default_rng(0)
    image = rng.random((37, 50, 3), dtype=np.float32)
    expected = processing.restore(DygraphRunner(models["model"]), image)
    out = restorers["dygraph"](image)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6, rtol=0)
    assert restorers["dygraph"].model.arch == models["model"].arch


@pytest.mark.parametrize("runtime", ["paddle-inference", "onnx"])
def test_runtimes_agree_on_float_images(restorers, runtime):
    rng = np.random.default_rng(1)
    for shape in [(37, 50, 3), (64, 64, 3), (29, 41)]:
        image = rng.random(shape).astype(np.float32)
        reference = restorers["dygraph"](image)
        out = restorers[runtime](image)
        assert out.shape == shape and out.dtype == np.float32
        assert np.abs(out - reference).max() <= 1e-4


@pytest.mark.parametrize("runtime", ["paddle-inference", "onnx"])
def test_runtimes_agree_on_integer_images(restorers, runtime):
    rng = np.random.default_rng(2)
    u8 = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    u16 = rng.integers(0, 65536, (33, 40), dtype=np.uint16)
    for image, levels in [(u8, 1), (u16, 256 * 1)]:
        reference = restorers["dygraph"](image)
        out = restorers[runtime](image)
        assert out.shape == image.shape and out.dtype == image.dtype
        # 1 grey level at 8 bits (in 16 bits: 1e-4 of 65535, below 7 levels)
        limit = levels if image.dtype == np.uint8 else 7
        assert np.abs(out.astype(int) - reference.astype(int)).max() <= limit


def test_arrays_keep_shape_dtype_and_scale(restorers):
    r = restorers["dygraph"]
    rng = np.random.default_rng(3)
    rgb = rng.random((24, 32, 3))
    float_out = r(rgb)  # float64 in, float64 out
    assert float_out.dtype == np.float64 and float_out.shape == rgb.shape
    u8 = np.rint(rgb * 255).astype(np.uint8)
    u8_out = r(u8)
    # The same restoration, scaled and rounded to the input's type.
    assert u8_out.dtype == np.uint8
    assert np.abs(u8_out.astype(float) - r(u8.astype(np.float32) / 255) * 255).max() <= 0.5 + 1e-3
    gray = u8[:, :, 0]
    gray_out = r(gray)
    assert gray_out.shape == gray.shape and gray_out.dtype == np.uint8
    colour = r(np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32) / 255)
    np.testing.assert_allclose(gray_out, np.rint(colour.mean(axis=2) * 255), atol=0.5 + 1e-3)
    assert r(gray[:, :, None]).shape == (24, 32, 1)


def test_tile_and_ensemble_options(models):
    rng = np.random.default_rng(4)
    image = rng.random((70, 90, 3), dtype=np.float32)
    runner = DygraphRunner(models["model"])
    tiled = Restorer(models["weights"], device="cpu", tile=48, tile_overlap=16)(image)
    np.testing.assert_allclose(tiled, processing.restore(runner, image, tile=48, overlap=16),
                               atol=1e-6, rtol=0)
    whole = processing.restore(runner, image)
    assert np.abs(tiled - whole).max() > 1e-3  # the option reached the tiling
    ensembled = Restorer(models["weights"], device="cpu", ensemble=True)(image)
    np.testing.assert_allclose(ensembled, processing.restore(SelfEnsemble(runner), image),
                               atol=1e-6, rtol=0)
    assert np.abs(ensembled - whole).max() > 1e-4


def test_run_writes_files_like_the_array_call(restorers, tmp_path):
    rng = np.random.default_rng(5)
    photos = tmp_path / "photos"
    photos.mkdir()
    colour = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    cv2.imwrite(str(photos / "a.png"), colour[:, :, ::-1])
    deep = rng.integers(0, 65536, (30, 30), dtype=np.uint16)
    cv2.imwrite(str(photos / "b.png"), deep)
    single = tmp_path / "c.jpg"
    cv2.imwrite(str(single), colour[:, :, ::-1])
    out_dir = tmp_path / "denoised"
    for runtime in ("dygraph", "onnx"):
        r = restorers[runtime]
        written = r.run([str(photos), str(single)], str(out_dir / runtime))
        assert written == [str(out_dir / runtime / n) for n in ("a.png", "b.png", "c.png")]
        a = cv2.imread(written[0], cv2.IMREAD_UNCHANGED)[:, :, ::-1]
        np.testing.assert_array_equal(a, r(colour))
        b = cv2.imread(written[1], cv2.IMREAD_UNCHANGED)
        assert b.dtype == np.uint16
        np.testing.assert_array_equal(b, r(deep))
    assert restorers["dygraph"].run(str(photos / "a.png"), str(out_dir / "one")) == \
        [str(out_dir / "one" / "a.png")]


def test_mistakes_are_user_errors(models, restorers):
    with pytest.raises(UserError, match="exactly one of"):
        Restorer()
    with pytest.raises(UserError, match="exactly one of"):
        Restorer(models["weights"], onnx_file=models["onnx_file"])
    with pytest.raises(UserError, match="engine 'dygraph' runs weights, but onnx_file was given"):
        Restorer(onnx_file=models["onnx_file"], runtime="dygraph")
    with pytest.raises(UserError, match="engine must be one of"):
        Restorer(models["weights"], runtime="tensorrt")
    with pytest.raises(UserError, match="multiple of 8"):
        Restorer(models["weights"], tile=50)
    with pytest.raises(UserError, match="pretrained model not found"):
        Restorer("nope.pdparams")
    r = restorers["dygraph"]
    with pytest.raises(UserError, match="expected an HxWx3 or HxW image"):
        r(np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(UserError, match="unsupported dtype int32"):
        r(np.zeros((8, 8, 3), np.int32))
    with pytest.raises(UserError, match="numpy array"):
        r([[0.5]])
    with pytest.raises(UserError, match="input not found"):
        r.run("no/such/folder", "out")


def test_weights_without_record_need_a_config(models, tmp_path):
    old = str(tmp_path / "old.pdparams")
    paddle.save(models["model"].state_dict(), old)  # as saved before the record existed
    with pytest.raises(UserError, match="does not record its network.*config"):
        Restorer(old, device="cpu")
    cfg = os.path.join(ROOT, "configs", "mirnet_lite.yaml")
    image = np.random.default_rng(6).random((20, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(Restorer(old, config=cfg, device="cpu", engine="dygraph")(image),
                               processing.restore(DygraphRunner(models["model"]), image),
                               atol=1e-6, rtol=0)

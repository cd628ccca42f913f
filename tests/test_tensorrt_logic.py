"""TensorRT decisions made before TensorRT runs, checked without it (CPU build).

Shape range for ``--tile``, automatic tiling of images beyond ``--trt_max_size``
and the device the PIR conversion runs on. Building and running the engines
themselves needs a GPU build of Paddle with TensorRT.
"""

import sys
import types

import numpy as np
import paddle
import pytest

from ppmirnet import processing
from ppmirnet.inference import paddle_predictor as pred
from ppmirnet.files import auto_tile, restore_files

from helpers import run_cli


def _png(path, rgb):
    h, w = rgb.shape[:2]
    processing.write_image(str(path), rgb, processing.ImageInfo(8, 3, None, h, w))


def test_tile_smaller_than_opt_size_gives_a_valid_range():
    assert pred.trt_size_range(8, 256, 1024) == (8, 256, 1024)
    assert pred.trt_size_range(8, 256, 1024, tile=512) == (8, 256, 512)
    assert pred.trt_size_range(8, 256, 1024, tile=128) == (8, 128, 128)
    assert pred.trt_size_range(64, 256, 1024, tile=32) == (32, 32, 32)
    mn, opt, mx = pred.trt_size_range(8, 256, 1024, tile=128)
    pred.PredictorOptions(use_gpu=True, use_tensorrt=True, trt_min_size=mn, trt_opt_size=opt,
                          trt_max_size=mx)  # accepted: 8 <= min <= opt <= max


def test_infer_cli_with_tile_under_opt_size_gets_past_the_shape_check(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("inference.pdmodel", "inference.pdiparams"):
        (model / name).write_bytes(b"")
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "a.png", np.zeros((16, 16, 3), np.float32))
    proc = run_cli("deploy/inference/infer.py", f"--model_dir={model}", f"--image_dir={images}",
                   f"--output_dir={tmp_path / 'out'}", "--use_gpu=True", "--use_tensorrt=True",
                   "--tile=128")
    assert proc.returncode == 1
    assert "TensorRT sizes" not in proc.stderr
    if not paddle.is_compiled_with_cuda():
        assert "needs a GPU build of PaddlePaddle" in proc.stderr


def test_auto_tile_decision():
    assert auto_tile((1000, 1020), 1024, 0) == 0
    assert auto_tile((1021, 900), 1024, 0) == 0        # padded to 1024: fits
    assert auto_tile((1025, 900), 1024, 0) == 1024     # padded to 1032: does not
    assert auto_tile((3000, 4000), 1020, 0) == 1016    # a multiple of 8
    assert auto_tile((3000, 4000), 1024, 256) == 256   # --tile wins
    assert auto_tile((3000, 4000), None, 0) == 0       # no TensorRT: whole image


class _LimitedRunner:
    """Halves its input; refuses inputs beyond ``max_input_size`` as a TensorRT engine does."""

    max_input_size = 64

    def __init__(self):
        self.shapes = []

    def __call__(self, batch):
        self.shapes.append(batch.shape)
        if max(batch.shape[2:]) > self.max_input_size:
            raise RuntimeError("input beyond the engine's shape range")
        return batch * 0.5


def test_image_beyond_trt_max_size_is_tiled_with_a_log_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 90, 3)).astype(np.float32) / 255.0
    _png(tmp_path / "big.png", image)
    _png(tmp_path / "small.png", image[:40, :40])
    runner = _LimitedRunner()
    outs = restore_files(runner, [str(tmp_path / "big.png"), str(tmp_path / "small.png")],
                         str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert "big.png: 100x90 is larger than TensorRT's --trt_max_size=64: restoring it in tiles of 64" in err
    assert "small.png" not in err
    assert max(max(s[2:]) for s in runner.shapes) <= 64 and len(runner.shapes) > 2
    big = processing.read_image(outs[0])[0]
    np.testing.assert_allclose(big, processing.read_image(str(tmp_path / "big.png"))[0] * 0.5,
                               atol=1 / 255 + 1e-6)


def test_pir_conversion_runs_on_the_requested_gpu(tmp_path, monkeypatch):
    calls, device = [], ["cpu"]
    monkeypatch.setattr(paddle, "get_device", lambda: device[0])
    monkeypatch.setattr(paddle, "set_device", lambda d: device.__setitem__(0, d))

    def convert(model_prefix, config):
        calls.append(device[0])
        calls.append(config.inputs[0]["min_input_shape"])
        for ext in (".json", ".pdiparams"):
            open(config.save_model_dir + ext, "w").close()

    fake = types.ModuleType("paddle.tensorrt.export")
    fake.Input = lambda **kw: kw
    fake.PrecisionMode = types.SimpleNamespace(FP16="fp16", FP32="fp32")
    fake.TensorRTConfig = lambda **kw: types.SimpleNamespace(**kw)
    fake.convert = convert
    monkeypatch.setitem(sys.modules, "paddle.tensorrt", types.ModuleType("paddle.tensorrt"))
    monkeypatch.setitem(sys.modules, "paddle.tensorrt.export", fake)
    runner = types.SimpleNamespace(
        options=pred.PredictorOptions(use_gpu=True, gpu_id=3, use_tensorrt=True),
        program=str(tmp_path / "inference.json"), in_channels=6)  # the dual-pixel MIRNet-v2
    pred.PaddlePredictor._convert_pir_tensorrt(runner, str(tmp_path / "trt"))
    assert calls == ["gpu:3", [1, 6, 8, 8]] and device[0] == "cpu"
    assert (tmp_path / "trt.json").is_file()

"""The dual-pixel MIRNet-v2 (defocus deblurring) restores pairs of views in every front end.

Left and right views are given separately (two files, or two folders paired
by file name, as DPDD's ``inputL/`` and ``inputR/``), stacked as 6 channels,
and the result is written as the left view was stored (here 16-bit).
"""

import os

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet import Restorer, processing
from ppmirnet.engine.checkpoint import save_weights
from ppmirnet.errors import UserError
from ppmirnet.export import export_inference_model
from ppmirnet.inference.onnx_runtime import export_onnx
from ppmirnet.inference.paddle_predictor import PredictorOptions, _trt_shapes, program_input_channels
from ppmirnet.modeling import MIRNetV2
from tests.helpers import run_cli

SIZE = (37, 44)  # odd height: padded to MIRNet-v2's multiple of 4 inside the network


@pytest.fixture(scope="module")
def dual(tmp_path_factory):
    """A small 6-channel MIRNet-v2: weights, its export (both programs, ONNX) and 16-bit pairs."""
    root = tmp_path_factory.mktemp("dual")
    paddle.seed(4)
    model = MIRNetV2(n_feat=16, n_MRB=1, in_channels=6, task="defocus_deblurring")
    model.eval()
    weights = root / "dpdd.pdparams"
    save_weights(str(weights), model.state_dict(), {"name": "MIRNetV2", **model.arch})
    export_inference_model(model, str(root / "inference"), legacy_format=True)
    export_onnx(str(root / "inference"), str(root / "dpdd.onnx"))
    rng = np.random.default_rng(6)
    views = {}
    for side in ("inputL", "inputR"):
        os.makedirs(root / side)
        for name in ("a.png", "b.png"):
            image = (rng.random((*SIZE, 3)) * 65535).astype(np.uint16)
            cv2.imwrite(str(root / side / name), image[:, :, ::-1])
            views[side, name] = image.astype(np.float32) / 65535.0
    expected = {}
    for name in ("a.png", "b.png"):
        x = np.concatenate([views["inputL", name], views["inputR", name]], axis=2)
        out = model(paddle.to_tensor(processing.to_batch([x]))).numpy()[0].transpose(1, 2, 0)
        expected[name] = np.round(np.clip(out, 0, 1) * 65535)
    return root, weights, model, expected


def _check_outputs(folder, expected, tolerance):
    assert sorted(os.listdir(folder)) == ["a.png", "b.png"]
    for name, ref in expected.items():
        got = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        assert got.dtype == np.uint16 and got.shape == (*SIZE, 3)  # 16-bit kept
        assert np.abs(got[:, :, ::-1].astype(np.float64) - ref).max() <= tolerance


def test_predict_infer_and_onnx_restore_pairs_of_folders(dual):
    root, weights, _, expected = dual
    left, right = str(root / "inputL"), str(root / "inputR")
    proc = run_cli("tools/predict.py", "--weights", str(weights), "--input", left,
                   "--input_right", right, "--output", str(root / "predicted"), "--engine", "dygraph")
    assert proc.returncode == 0, proc.stderr
    # The same network on more CPU threads sums in another order: at most one 16-bit level apart.
    _check_outputs(root / "predicted", expected, 1)
    proc = run_cli("deploy/inference/infer.py", f"--model_dir={root / 'inference'}",
                   f"--image_dir={left}", f"--image_dir_right={right}",
                   f"--output_dir={root / 'inferred'}")
    assert proc.returncode == 0, proc.stderr
    # Within 1e-4 of the dygraph float result: at most 7 of 65535 apart.
    _check_outputs(root / "inferred", expected, 7)
    proc = run_cli("deploy/onnx/infer.py", f"--onnx_file={root / 'dpdd.onnx'}",
                   f"--image_dir={left}", f"--image_dir_right={right}",
                   f"--output_dir={root / 'onnx'}", "--tile=16", "--tile_overlap=4")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(root / "onnx")) == ["a.png", "b.png"]


def test_restorer_takes_the_right_view(dual):
    root, weights, model, expected = dual
    restorer = Restorer(str(weights), engine="dygraph")
    assert restorer.dual_pixel
    left = cv2.imread(str(root / "inputL" / "a.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    right = cv2.imread(str(root / "inputR" / "a.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    out = restorer(np.ascontiguousarray(left), right=np.ascontiguousarray(right))
    assert out.dtype == np.uint16 and np.abs(out.astype(np.float64) - expected["a.png"]).max() <= 1
    written = restorer.run(str(root / "inputL" / "b.png"), str(root / "api"),
                           right=str(root / "inputR" / "b.png"))
    assert written == [str(root / "api" / "b.png")]
    with pytest.raises(UserError, match="this model restores dual-pixel pairs: pass the right view"):
        restorer(np.ascontiguousarray(left))
    with pytest.raises(UserError, match="dual-pixel pairs .6 input channels.: give the left views "
                                        "as the input and right= too"):
        restorer.run(str(root / "inputL"), str(root / "api2"))


def test_mistakes_name_the_missing_view_and_write_nothing(dual, tmp_path):
    root, weights, _, _ = dual
    lonely = tmp_path / "lonely"
    os.makedirs(lonely)
    for name in ("a.png", "c.png"):
        (lonely / name).write_bytes((root / "inputR" / "a.png").read_bytes())
    cases = [
        (["--input", str(root / "inputL"), "--input_right", str(lonely)],
         f"{root / 'inputL' / 'b.png'} has no right view {lonely / 'b.png'}"),
        (["--input", str(root / "inputL"), "--input_right", str(root / "inputR" / "a.png")],
         "give two image files or two folders of dual-pixel views"),
        (["--input", str(root / "inputL")],
         "this model restores dual-pixel pairs (6 input channels): give the left views as the "
         "input and the right views with --input_right too"),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        proc = run_cli("tools/predict.py", "--weights", str(weights), *args, "--output", str(out))
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert message in proc.stderr, proc.stderr[-2000:]
        assert not out.exists()


def test_a_three_channel_model_refuses_pairs(tmp_path):
    paddle.seed(0)
    model = MIRNetV2(n_feat=16, n_MRB=1)
    weights = tmp_path / "rgb.pdparams"
    save_weights(str(weights), model.state_dict(), {"name": "MIRNetV2", **model.arch})
    image = np.zeros((16, 16, 3), np.uint8)
    for side in ("l", "r"):
        cv2.imwrite(str(tmp_path / f"{side}.png"), image)
    proc = run_cli("tools/predict.py", "--weights", str(weights), "--input", str(tmp_path / "l.png"),
                   "--input_right", str(tmp_path / "r.png"), "--output", str(tmp_path / "out"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert ("this model takes 3-channel images, not dual-pixel pairs: leave out the right views "
            "with --input_right") in proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_exported_programs_say_six_channels_and_tensorrt_ranges_use_them(dual):
    root = dual[0]
    for program in ("inference.json", "inference.pdmodel"):
        assert program_input_channels(str(root / "inference" / program)) == 6
    options = PredictorOptions(max_batch_size=2, trt_min_size=8, trt_opt_size=64, trt_max_size=128)
    assert _trt_shapes(options, 6) == {"min": [1, 6, 8, 8], "opt": [2, 6, 64, 64],
                                       "max": [2, 6, 128, 128]}

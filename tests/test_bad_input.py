"""User mistakes in the tools end with one line naming the thing and exit 1, never a traceback."""

import errno
import os
import struct
import zlib

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet import processing
from ppmirnet.config import load_config
from ppmirnet.errors import ConfigError, UserError
from ppmirnet.export import export_inference_model
from ppmirnet.modeling import MIRNet
from ppmirnet.utils import io

from helpers import FIXTURE, run_cli
from lite_helpers import LITE_CONFIG


def _png_claiming(width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Lite weights, their export (both program formats) and their ONNX model."""
    base = tmp_path_factory.mktemp("model")
    paddle.seed(3)
    net = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    net.eval()
    weights = str(base / "lite.pdparams")
    paddle.save(net.state_dict(), weights)
    export_inference_model(net, str(base / "inference"), legacy_format=True)
    return weights, str(base / "inference")


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "ok.png"), np.full((24, 32, 3), 90, np.uint8))
    (tmp_path / "huge.png").write_bytes(_png_claiming(100000, 100000))
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((3, 3, 3), np.uint8))
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path


def _predict(weights, src, dst):
    return ["tools/predict.py", "-c", LITE_CONFIG, "-o", f"Global.pretrained_model={weights}",
            "--input", str(src), "--output", str(dst)]


def _infer(model_dir, src, dst, *extra):
    return ["deploy/inference/infer.py", f"--model_dir={model_dir}", f"--image_dir={src}",
            f"--output_dir={dst}", *extra]


def _one_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def test_a_header_claiming_a_huge_image_is_a_user_error(images):
    path = str(images / "huge.png")
    with pytest.raises(UserError, match="huge.png: the header declares more pixels than OpenCV"):
        processing.read_image(path)
    with pytest.raises(UserError, match="header declares"):
        processing.decode_image(_png_claiming(100000, 100000), "upload")


@pytest.mark.parametrize("tool", ["predict", "infer"])
def test_tools_name_a_huge_or_tiny_image_and_leave_no_folder(model, images, tool):
    weights, model_dir = model
    for name, expected in [("huge.png", "the header declares more pixels than OpenCV decodes "
                                        "(CV_IO_MAX_IMAGE_PIXELS)"),
                           ("tiny.png", "image of 3x3 is too small: the networks need at least 8x8 pixels")]:
        out = images / f"out_{tool}_{name}"
        args = (_predict(weights, images / name, out) if tool == "predict"
                else _infer(model_dir, images / name, out))
        proc = run_cli(*args)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        # The restore loop lists every image it could not restore with its reason.
        assert f"{images / name}: {expected}" in proc.stderr, proc.stderr[-2000:]
        assert not out.exists()


@pytest.mark.parametrize("tool", ["predict", "infer"])
def test_output_paths_that_cannot_be_folders_fail_before_work(model, images, tool):
    weights, model_dir = model
    src = images / "in"
    for dst, expected in [(images / "a_file", f"{images / 'a_file'} exists and is not a folder"),
                          (images / "a_file" / "sub",
                           f"{images / 'a_file' / 'sub'} cannot be created: "
                           f"{images / 'a_file'} is a file")]:
        args = _predict(weights, src, dst) if tool == "predict" else _infer(model_dir, src, dst)
        line = _one_line(run_cli(*args))
        assert line.startswith("error: ") and line.endswith(expected), line


def test_training_output_under_a_file_is_refused(images):
    line = _one_line(run_cli("tools/train.py", "-c", LITE_CONFIG, "-o",
                             f"Global.output_dir={images / 'a_file' / 'run'}"))
    assert line.endswith(f"{images / 'a_file' / 'run'} cannot be created: "
                         f"{images / 'a_file'} is a file")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_disk_is_a_user_error_and_keeps_the_old_file(tmp_path, monkeypatch,
                                                                         code):
    target = tmp_path / "out" / "a.png"
    target.parent.mkdir()
    target.write_bytes(b"old")
    rgb = np.zeros((8, 8, 3), np.float32)
    info = processing.ImageInfo(8, 3, None, 8, 8)
    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        if "w" in mode and os.path.basename(str(path)).startswith(".tmp-"):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(UserError) as err:
        processing.write_image(str(target), rgb, info)
    assert str(err.value) == f"cannot write {target}: {os.strerror(code)}"
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(target.parent) == ["a.png"]


def test_a_read_only_output_folder_is_refused_before_work(tmp_path, monkeypatch):
    monkeypatch.setattr(io.os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match=f"{tmp_path}/new cannot be created or written: "
                                        f"{tmp_path} is read-only"):
        io.check_output_dir(str(tmp_path / "new"))


@pytest.mark.parametrize("kind", ["empty", "params", "onnx_like"])
def test_a_damaged_program_is_refused_before_paddle_reads_it(model, images, tmp_path, kind):
    _, model_dir = model
    bad = tmp_path / "bad_model"
    bad.mkdir()
    with open(os.path.join(model_dir, "inference.pdiparams"), "rb") as f:
        params = f.read()
    (bad / "inference.pdiparams").write_bytes(params)
    program = {"empty": b"", "params": params,
               "onnx_like": b"\x08\x07\x12\x07pytorch"}[kind]  # parses, is not a program
    (bad / "inference.pdmodel").write_bytes(program)
    proc = run_cli(*_infer(bad, images / "in", tmp_path / "o", "--legacy_program=True"))
    assert _one_line(proc) == (f"error: {bad}/inference.pdmodel is not a Paddle inference "
                               f"program (damaged, or another file under this name); export it "
                               f"again with tools/export_model.py")


@pytest.mark.parametrize("content,reason", [
    (b"", "the file is empty"),
    (b"hello\n", "not a zip archive of arrays"),
    (b"\x93NUMPY\x01\x00", "it is a single .npy array, not an archive of official key -> array"),
])
def test_convert_refuses_a_bad_npz_without_unsafe_advice(tmp_path, content, reason):
    src = tmp_path / "bad.npz"
    src.write_bytes(content)
    proc = run_cli("tools/convert_weights.py", "--src", str(src), "--dst", str(tmp_path / "w"))
    line = _one_line(proc)
    assert line == f"error: cannot read {src} as .npz: {reason}"
    assert "pickle" not in proc.stderr
    assert not (tmp_path / "w").exists()


def test_convert_refuses_nan_weights_unless_allowed(tmp_path):
    state = dict(np.load(os.path.join(FIXTURE, "weights.npz")))
    state["conv_in.weight"] = state["conv_in.weight"].copy()
    state["conv_in.weight"].flat[3] = np.nan
    src = tmp_path / "nan.npz"
    np.savez(src, **state)
    dst = tmp_path / "w.pdparams"
    line = _one_line(run_cli("tools/convert_weights.py", "--src", str(src), "--dst", str(dst)))
    assert line == (f"error: {src} holds NaN or infinite values in 1 tensor(s) (conv_in.weight); "
                    f"pass --allow_nan to convert it anyway")
    assert not dst.exists()
    proc = run_cli("tools/convert_weights.py", "--src", str(src), "--dst", str(dst), "--allow_nan")
    assert proc.returncode == 0, proc.stderr
    assert np.isnan(paddle.load(str(dst))["conv_in.weight"].numpy().flat[3])



@pytest.mark.parametrize("override,reason", [(f"Arch.n_feat={n}", f"n_feat is {n}, must be >= 8")
                                             for n in range(1, 8)]
                         + [("Arch.kernel_size=4", "kernel_size is 4, must be odd")])
def test_an_architecture_that_cannot_be_built_is_refused_at_config_load(override, reason):
    with pytest.raises(ConfigError) as err:
        load_config(LITE_CONFIG, [override])
    assert str(err.value).startswith(LITE_CONFIG) and reason in str(err.value)


def test_mirnetv2_widths_are_checked_at_config_load():
    with pytest.raises(ConfigError, match=r"MIRNetV2 n_feat=20, chan_factor=1.5"):
        load_config(LITE_CONFIG, ["Arch.name=MIRNetV2", "Arch.n_feat=20"])


def test_train_with_a_bad_architecture_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    line = _one_line(run_cli("tools/train.py", "-c", LITE_CONFIG, "-o", "Arch.n_feat=4",
                             f"Global.output_dir={out}"))
    assert line.startswith(f"error: {LITE_CONFIG}") and "n_feat is 4, must be >= 8" in line
    assert not out.exists()

"""Training you can watch: VisualDL scalars and images, the ETA, validation triptychs."""

import glob
import os
import re
import sys

import cv2
import numpy as np
import pytest

from ppmirnet import commands, processing
from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.dygraph import DygraphRunner
from ppmirnet.modeling import build_model
from ppmirnet.engine.trainer import Trainer
from ppmirnet.engine.visual_log import GAP, triptych

from lite_helpers import EVAL_LINE, LITE_CONFIG, TRAIN_LINE, read, tiny_overrides

ETA = re.compile(r"ips: [0-9.]+ samples/s, eta: (\d+):(\d\d):(\d\d)$", re.M)


@pytest.fixture(scope="module")
def watched_run(lite_root, tmp_path_factory):
    """A tiny run (2 epochs x 6 iterations, eval after each) with VisualDL and 2 saved triptychs."""
    pytest.importorskip("visualdl")  # the optional extra; CI installs it (.ci/run)
    out = str(tmp_path_factory.mktemp("watched"))
    cfg = load_config(LITE_CONFIG, tiny_overrides(lite_root, out, **{
        "Global.use_visualdl": "true", "Global.save_val_images": 2}))
    Trainer(cfg).train()
    return cfg, out


def _reader(out):
    from visualdl import LogReader

    (record,) = glob.glob(os.path.join(out, "vdl", "vdlrecords.*.log"))
    return LogReader(file_path=record)


def test_visualdl_scalars_are_the_logged_values(watched_run):
    _, out = watched_run
    reader = _reader(out)
    tags = reader.get_tags()
    assert set(tags["scalar"]) == {"train/loss", "train/lr", "train/ips", "eval/psnr", "eval/ssim"}
    log = read(os.path.join(out, "train.log"))
    lines = TRAIN_LINE.findall(log)
    assert len(lines) == 12
    loss = reader.get_data("scalar", "train/loss")
    assert [r.id for r in loss] == list(range(1, 13))  # the global step of each line
    np.testing.assert_allclose([r.value for r in loss], [float(m[4]) for m in lines], atol=6e-6)
    lr = reader.get_data("scalar", "train/lr")
    np.testing.assert_allclose([r.value for r in lr], [float(m[5]) for m in lines], atol=6e-7)
    ips = reader.get_data("scalar", "train/ips")
    np.testing.assert_allclose([r.value for r in ips], [float(m[8]) for m in lines], atol=6e-3)
    evals = EVAL_LINE.findall(log)
    psnr = reader.get_data("scalar", "eval/psnr")
    assert [r.id for r in psnr] == [6, 12] and len(evals) == 2
    np.testing.assert_allclose([r.value for r in psnr], [float(m[0]) for m in evals], atol=6e-3)
    ssim = reader.get_data("scalar", "eval/ssim")
    np.testing.assert_allclose([r.value for r in ssim], [float(m[1]) for m in evals], atol=6e-5)


def test_visualdl_images_are_input_restored_truth(watched_run, lite_root):
    cfg, out = watched_run
    reader = _reader(out)
    assert set(reader.get_tags()["image"]) == {"val/0", "val/1", "val/2"}
    records = reader.get_data("image", "val/0")
    assert [r.id for r in records] == [6, 12]
    shown = cv2.imdecode(np.frombuffer(records[-1].image.encoded_image_string, np.uint8),
                         cv2.IMREAD_COLOR)[:, :, ::-1]
    # The first validation pair, restored by the final weights.
    names = sorted(os.listdir(os.path.join(lite_root, "val", "input")))
    noisy, _ = processing.read_image(os.path.join(lite_root, "val", "input", names[0]))
    clean, _ = processing.read_image(os.path.join(lite_root, "val", "groundtruth", names[0]))
    _, state, arch = ckpt.read_weights(os.path.join(out, "latest.pdparams"))
    model = build_model(arch)
    model.set_state_dict(state)
    restored = processing.restore(DygraphRunner(model), noisy)
    h, w = noisy.shape[:2]
    assert shown.shape == (h, 3 * w + 2 * GAP, 3)
    expected = triptych(noisy, restored, clean)
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 1
    # ... and the same picture saved as a PNG for users without VisualDL.
    saved = sorted(glob.glob(os.path.join(out, "val_images", "epoch_2", "*.png")))
    assert [os.path.basename(p) for p in saved] == ["000.png", "001.png"]
    assert sorted(os.listdir(os.path.join(out, "val_images"))) == ["epoch_1", "epoch_2"]
    np.testing.assert_array_equal(cv2.imread(saved[0])[:, :, ::-1], shown)


def test_train_lines_end_with_an_eta(watched_run):
    """``eta: H:MM:SS`` = steps left x the mean step time of the line, as PaddleClas logs it."""
    _, out = watched_run
    log = read(os.path.join(out, "train.log"))
    lines = TRAIN_LINE.findall(log)
    etas = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in ETA.findall(log)]
    assert len(etas) == len(lines) == 12
    for step, (line, eta) in enumerate(zip(lines, etas), start=1):
        assert abs(eta - (12 - step) * float(line[6])) <= 0.5 + 1e-3


def test_visualdl_missing_fails_at_start_with_the_install_command(lite_root, tmp_path,
                                                                   monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "visualdl", None)  # import visualdl -> ImportError
    out = tmp_path / "run"
    argv = ["train", "-c", LITE_CONFIG, "-o", *tiny_overrides(lite_root, str(out)),
            "Global.use_visualdl=true"]
    assert commands.main(argv) == 1
    err = capsys.readouterr().err
    assert err == ("error: Global.use_visualdl is true but VisualDL is not installed: "
                   "pip install visualdl==2.5.3 (or pip install '.[visualdl]')\n")
    assert not out.exists()


def test_save_val_images_without_visualdl(lite_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "visualdl", None)
    out = str(tmp_path / "run")
    cfg = load_config(LITE_CONFIG, tiny_overrides(lite_root, out, **{
        "Global.epochs": 1, "Global.save_val_images": 10}))
    Trainer(cfg).train()
    saved = sorted(os.listdir(os.path.join(out, "val_images", "epoch_1")))
    assert saved == ["000.png", "001.png", "002.png", "003.png"]  # the lite set has 4
    assert not os.path.exists(os.path.join(out, "vdl"))

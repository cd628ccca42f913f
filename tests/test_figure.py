"""``ppmirnet figure`` / tools/make_figure.py: the README's result figures."""

import os

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet import Restorer, commands, metrics, processing
from ppmirnet.commands.figure import CAPTION, GAP, detailed_crop
from ppmirnet.data.lite import make_lite_data
from ppmirnet.engine.checkpoint import save_weights
from ppmirnet.modeling import MIRNet


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figure")
    make_lite_data(str(folder / "lite"))
    paddle.seed(8)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    weights = str(folder / "w.pdparams")
    save_weights(weights, model.state_dict(), {"name": "MIRNet", **model.arch})
    return str(folder / "lite" / "val"), weights


def test_figure_shows_crops_and_the_psnr(setup, tmp_path, capsys):
    data, weights = setup
    out = str(tmp_path / "fig.png")
    code = commands.main(["figure", "--weights", weights, "--data", data, "--output", out,
                          "--count", "2", "--crop", "64", "--zoom", "2", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0
    figure = cv2.imread(out)[:, :, ::-1]
    panel = 64 * 2
    assert figure.shape == (2 * (panel + CAPTION) + GAP, 3 * panel + 2 * GAP, 3)
    names = sorted(os.listdir(os.path.join(data, "groundtruth")))[:2]
    restorer = Restorer(weights, device="cpu")
    for row, name in enumerate(names):
        noisy, _ = processing.read_image(os.path.join(data, "input", name))
        truth, _ = processing.read_image(os.path.join(data, "groundtruth", name))
        restored = restorer(noisy)
        assert (f"{name}: input {metrics.psnr(noisy, truth):.2f} dB, "
                f"restored {metrics.psnr(restored, truth):.2f} dB") in printed
        (y, x), size = detailed_crop(truth, 64)
        top = row * (panel + CAPTION + GAP)
        for col, image in enumerate((noisy, restored, truth)):
            left = col * (panel + GAP)
            shown = figure[top:top + panel, left:left + panel].astype(int)
            crop = np.rint(np.clip(image[y:y + size, x:x + size], 0, 1) * 255).astype(int)
            np.testing.assert_array_equal(shown[::2, ::2], crop)
    assert f"wrote {out}" in printed


def test_detailed_crop_finds_the_texture():
    image = np.zeros((64, 64, 3), np.float32)
    image[32:48, 16:32] = np.indices((16, 16)).sum(axis=0)[:, :, None] % 2  # a checkerboard
    (y, x), size = detailed_crop(image, 16)
    assert size == 16 and abs(y - 32) <= 4 and abs(x - 16) <= 4


def test_figure_mistakes(setup, tmp_path, capsys):
    data, weights = setup
    cases = [
        (["--weights", weights, "--data", data, "--output", str(tmp_path / "f.jpg")],
         "error: --output must be a .png file"),
        (["--weights", weights, "--data", str(tmp_path / "none"), "--output", str(tmp_path / "f.png")],
         "error: dataset folder not found"),
        (["--weights", weights, "--data", data, "--output", str(tmp_path / "f.png"), "--images", "x.png"],
         "error: x.png is not a pair of"),
    ]
    for argv, message in cases:
        assert commands.main(["figure", *argv]) == 1
        assert capsys.readouterr().err.startswith(message)
    assert not os.listdir(tmp_path)


def test_figure_psnr_follows_the_config_protocol(setup, tmp_path, capsys):
    """With -c, the PSNR under the panels is the task's (here the Y channel, border 4)."""
    from lite_helpers import LITE_CONFIG

    data, weights = setup
    out = str(tmp_path / "fig.png")
    code = commands.main(["figure", "-c", LITE_CONFIG, "-o", "Metric.color=y", "Metric.crop_border=4",
                          "--weights", weights, "--data", data, "--output", out, "--count", "1",
                          "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0
    name = sorted(os.listdir(os.path.join(data, "groundtruth")))[0]
    noisy, _ = processing.read_image(os.path.join(data, "input", name))
    truth, _ = processing.read_image(os.path.join(data, "groundtruth", name))
    restored = Restorer(weights, device="cpu")(noisy)
    p_in, p_out = (metrics.image_metrics(x, truth, ["psnr"], color="y", crop_border=4)["psnr"]
                   for x in (noisy, restored))
    assert abs(p_in - metrics.psnr(noisy, truth)) > 0.05  # a different number than RGB
    assert f"{name}: input {p_in:.2f} dB, restored {p_out:.2f} dB" in printed
    assert "PSNR protocol: Y channel" in printed

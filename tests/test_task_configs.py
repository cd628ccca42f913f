"""The paper's task configs (RealSR x2/x3/x4, LOL, FiveK): load, data preparation, evaluation.

Each config is evaluated on a small paired folder (``-o DataLoader.Eval.dataset.root=DIR``)
and its numbers are recomputed here from the protocol's formulas: RealSR on the
Y channel of the saved 8-bit output with ``scale`` border pixels cropped,
enhancement on RGB floats over the full image.
"""

import inspect
import json
import os

import cv2
import numpy as np
import paddle
import pytest
from skimage import data

from ppmirnet.config import load_config
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.engine.dygraph import DygraphRunner
from ppmirnet.modeling import MIRNet

from helpers import ROOT, run_tool_in_process

CONFIGS = os.path.join(ROOT, "configs")
TASKS = {  # config -> (color, crop_border, quantize, paper PSNR in its header)
    "mirnet_realsr_x2.yaml": ("y", 2, True, "34.35"),
    "mirnet_realsr_x3.yaml": ("y", 3, True, "31.16"),
    "mirnet_realsr_x4.yaml": ("y", 4, True, "29.14"),
    "mirnet_lol.yaml": ("rgb", 0, False, "24.14"),
    "mirnet_fivek.yaml": ("rgb", 0, False, "23.73"),
}
SMALL = {"name": "MIRNet", "in_channels": 3, "out_channels": 3, "n_feat": 8, "kernel_size": 3,
         "stride": 2, "n_RRG": 1, "n_MSRB": 1, "height": 3, "width": 2, "bias": False}


def _write(path, rgb01):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.round(rgb01[:, :, ::-1] * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """Two photographs and degraded versions of them, in input/ + groundtruth/."""
    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(11)
    crops = {"cat": data.chelsea()[40:112, 80:176], "coffee": data.coffee()[100:164, 200:280]}
    for name, gt in crops.items():
        gt = gt / 255.0
        degraded = np.clip(cv2.GaussianBlur(gt, (5, 5), 1.0) * 0.8 + rng.normal(0, 0.03, gt.shape), 0, 1)
        _write(root / "input" / f"{name}.png", degraded)
        _write(root / "groundtruth" / f"{name}.png", gt)
    return str(root)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Small seeded weights that record their architecture (so any task config loads them)."""
    paddle.seed(5)
    model = MIRNet(**{k: v for k, v in SMALL.items() if k != "name"})
    path = str(tmp_path_factory.mktemp("w") / "small.pdparams")
    ckpt.save_weights(path, model.state_dict(), SMALL)
    model.eval()
    return path, model


@pytest.mark.parametrize("config", sorted(TASKS))
def test_task_config_is_the_default_mirnet_with_its_protocol(config):
    cfg = load_config(os.path.join(CONFIGS, config))
    color, border, quantize, paper = TASKS[config]
    defaults = {k: p.default for k, p in inspect.signature(MIRNet.__init__).parameters.items()
                if k != "self"}
    assert {k: v for k, v in cfg["Arch"].items() if k != "name"} == defaults
    m = cfg["Metric"]
    assert (m["color"], m["crop_border"], m["quantize"]) == (color, border, quantize)
    assert cfg["DataLoader"]["Eval"]["sampler"]["batch_size"] == 1  # images of any size
    enhancement = config in ("mirnet_lol.yaml", "mirnet_fivek.yaml")
    assert cfg["Global"]["epochs"] == (200 if enhancement else 60)
    assert cfg["DataLoader"]["Train"]["mixup"]["start_epoch"] == 6
    with open(os.path.join(CONFIGS, config)) as f:
        assert paper in f.read()


@pytest.mark.parametrize("config", sorted(TASKS))
def test_task_config_evaluates_a_paired_folder_with_its_protocol(config, paired, weights,
                                                                 tmp_path, capsys):
    path, model = weights
    color, border, quantize, _ = TASKS[config]
    saved = tmp_path / "restored"
    code, out, err = run_tool_in_process("eval", [
        "-c", os.path.join(CONFIGS, config), "-o", f"Global.pretrained_model={path}",
        f"Global.output_dir={tmp_path}", "Global.device=cpu",
        f"DataLoader.Eval.dataset.root={paired}", "DataLoader.Eval.loader.num_workers=0",
        "--with_input", "--save_images", str(saved)], capsys)
    assert code == 0, err
    with open(tmp_path / "eval_result.json") as f:
        report = json.load(f)
    assert report["images"] == 2 and sorted(os.listdir(saved)) == ["cat.png", "coffee.png"]
    assert (report["protocol"]["color"], report["protocol"]["crop_border"],
            report["protocol"]["quantize"]) == (color, border, quantize)
    assert f"[Eval] protocol: {report['protocol']['description']}" in out

    runner = DygraphRunner(model)
    psnr, psnr_in = [], []
    for name in ("cat", "coffee"):
        inp = cv2.imread(os.path.join(paired, "input", name + ".png"))[:, :, ::-1] / 255.0
        gt = cv2.imread(os.path.join(paired, "groundtruth", name + ".png"))[:, :, ::-1] / 255.0
        if quantize:  # the saved PNG is the measured output
            out_img = cv2.imread(str(saved / (name + ".png")))[:, :, ::-1] / 255.0
        else:
            batch = inp.transpose(2, 0, 1)[None].astype(np.float32)
            out_img = np.clip(runner(batch)[0].transpose(1, 2, 0).astype(np.float64), 0, 1)
        if color == "y":
            def plane(x):
                y = 16 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]
                return y[border:-border, border:-border]
            peak = 255.0
        else:
            def plane(x):
                return x
            peak = 1.0
        for restored, dst in ((out_img, psnr), (inp, psnr_in)):
            dst.append(10 * np.log10(peak ** 2 / np.mean((plane(restored) - plane(gt)) ** 2)))
    assert report["psnr"] == pytest.approx(np.mean(psnr), abs=1e-6)
    assert report["input_psnr"] == pytest.approx(np.mean(psnr_in), abs=1e-6)


# -- data preparation -------------------------------------------------------------------------

def _photo(i, size=(48, 64)):
    rng = np.random.default_rng(i)
    img = cv2.resize(data.astronaut(), size[::-1], interpolation=cv2.INTER_AREA) / 255.0
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)


def test_prepare_realsr_pairs_lr_with_hr_per_camera_and_scale(tmp_path, capsys):
    src = tmp_path / "RealSR_V1"
    for camera in ("Canon", "Nikon"):
        for split in ("Train", "Test"):
            for scale in (2, 4):
                for i in (1, 2):
                    folder = src / camera / split / str(scale)
                    _write(folder / f"{camera}_{i:03d}_HR.png", _photo(i))
                    _write(folder / f"{camera}_{i:03d}_LR{scale}.png", _photo(10 * scale + i))
    code, out, err = run_tool_in_process("prepare_data", ["--dataset", "realsr", "--scale", "4", "--split", "Test",
                                           "--src", str(src), "--out", str(tmp_path / "t4"),
                                           "--whole"], capsys)
    assert code == 0, err
    names = ["Canon_001.png", "Canon_002.png", "Nikon_001.png", "Nikon_002.png"]
    assert sorted(os.listdir(tmp_path / "t4" / "input")) == names
    with open(src / "Nikon" / "Test" / "4" / "Nikon_002_LR4.png", "rb") as a, \
            open(tmp_path / "t4" / "input" / "Nikon_002.png", "rb") as b:
        assert a.read() == b.read()
    with open(src / "Nikon" / "Test" / "4" / "Nikon_002_HR.png", "rb") as a, \
            open(tmp_path / "t4" / "groundtruth" / "Nikon_002.png", "rb") as b:
        assert a.read() == b.read()
    assert "wrote 4 whole pairs from 4 images" in out

    args = ["--dataset", "realsr", "--scale", "2", "--src", str(src), "--patch_size", "16",
            "--num_patches", "3", "--seed", "9"]
    assert run_tool_in_process("prepare_data", args + ["--out", str(tmp_path / "a")], capsys)[0] == 0
    assert run_tool_in_process("prepare_data", args + ["--out", str(tmp_path / "b"), "--workers", "2"], capsys)[0] == 0
    files = sorted(os.listdir(tmp_path / "a" / "input"))
    assert len(files) == 12 and files[0] == "0001_001.png"
    for name in files:  # seeded whatever the workers; input and ground truth cut alike
        a = cv2.imread(str(tmp_path / "a" / "input" / name))
        assert np.array_equal(a, cv2.imread(str(tmp_path / "b" / "input" / name)))
        assert a.shape == (16, 16, 3)
    lr = cv2.imread(str(src / "Canon" / "Train" / "2" / "Canon_001_LR2.png"))
    hr = cv2.imread(str(src / "Canon" / "Train" / "2" / "Canon_001_HR.png"))
    p_in = cv2.imread(str(tmp_path / "a" / "input" / "0001_001.png"))
    p_gt = cv2.imread(str(tmp_path / "a" / "groundtruth" / "0001_001.png"))
    hits = [(t, l) for t in range(33) for l in range(49)
            if np.array_equal(lr[t:t + 16, l:l + 16], p_in)]
    assert len(hits) == 1 and np.array_equal(hr[hits[0][0]:hits[0][0] + 16, hits[0][1]:hits[0][1] + 16], p_gt)

    code, _, err = run_tool_in_process("prepare_data", ["--dataset", "realsr", "--src", str(src), "--out", "x"], capsys)
    assert code == 1 and "--dataset realsr needs --scale" in err
    os.remove(src / "Canon" / "Train" / "2" / "Canon_002_HR.png")
    code, _, err = run_tool_in_process("prepare_data", args + ["--out", str(tmp_path / "c")], capsys)
    assert code == 1 and "Canon_002_LR2.png has no HR image" in err
    code, _, err = run_tool_in_process("prepare_data", ["--dataset", "realsr", "--scale", "3", "--src", str(src),
                                         "--out", str(tmp_path / "d")], capsys)
    assert code == 1 and "no <camera>/Train/3/*_LR3.png images in" in err


@pytest.mark.parametrize("dataset, input_dir, gt_dir", [("lol", "low", "high"),
                                                         ("fivek", "input", "expertC")])
def test_prepare_enhancement_sets(tmp_path, capsys, dataset, input_dir, gt_dir):
    src = tmp_path / "raw"
    for i in (1, 2, 3):
        _write(src / input_dir / f"{i}.png", _photo(i) * 0.1)
        _write(src / gt_dir / f"{i}.png", _photo(i))
    code, out, err = run_tool_in_process("prepare_data", ["--dataset", dataset, "--src", str(src), "--out",
                                           str(tmp_path / "test"), "--whole"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "test" / "groundtruth")) == ["1.png", "2.png", "3.png"]
    code, out, err = run_tool_in_process("prepare_data", ["--dataset", dataset, "--src", str(src), "--out",
                                           str(tmp_path / "train"), "--patch_size", "32",
                                           "--num_patches", "2"], capsys)
    assert code == 0 and "wrote 6 patch pairs from 3 images" in out
    os.remove(src / gt_dir / "3.png")
    code, _, err = run_tool_in_process("prepare_data", ["--dataset", dataset, "--src", str(src), "--out",
                                         str(tmp_path / "x"), "--whole"], capsys)
    assert code == 1 and f"{input_dir}/3.png has no ground truth in" in err
    code, _, err = run_tool_in_process("prepare_data", ["--dataset", dataset, "--src", str(tmp_path / "none"),
                                         "--out", str(tmp_path / "y")], capsys)
    assert code == 1 and "folder not found" in err

"""The command-line tools: help, errors, eval/predict/export results, data tools."""

import json
import os
import sys

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet import metrics, processing
from ppmirnet.engine.dygraph import DygraphRunner
from ppmirnet.modeling import MIRNet

from helpers import ROOT, folder_bytes, load_tool, run_cli, run_tool_in_process
from lite_helpers import LITE_CONFIG

TOOLS = ["train", "eval", "predict", "export_model", "make_lite_data", "prepare_sidd"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Weights of the lite architecture (seeded random init; no training needed here)."""
    paddle.seed(3)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    path = str(tmp_path_factory.mktemp("w") / "lite.pdparams")
    paddle.save(model.state_dict(), path)
    model.eval()
    return path, model


def _common(lite_root, out_dir, w=None):
    o = [f"Global.output_dir={out_dir}", f"DataLoader.Eval.dataset.root={lite_root}"]
    if w:
        o.append(f"Global.pretrained_model={w}")
    return ["-c", LITE_CONFIG, "-o", *o]


# -- help and errors ---------------------------------------------------------------------

@pytest.mark.parametrize("name", TOOLS)
def test_help_explains_the_tool(name, capsys):
    with pytest.raises(SystemExit) as exc:
        load_tool(name).main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    doc = load_tool(name).__doc__.strip().splitlines()[0]
    assert doc in text and "usage:" in text


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    proc = run_cli("tools/train.py", "-c", "configs/mirnet_lite.yaml", "-o", "Global.epoch=2")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: configs/mirnet_lite.yaml: unknown key Global.epoch "
                                   "(from -o Global.epoch=2)")
    sidd = tmp_path / "SIDD" / "train"
    proc = run_cli("tools/train.py", "-c", "configs/mirnet_sidd.yaml", "-o", "Global.device=cpu",
                   f"DataLoader.Train.dataset.root={sidd}", f"Global.output_dir={tmp_path / 'o'}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"error: dataset folder not found: {sidd}/input" in proc.stderr
    assert "data/README.md" in proc.stderr
    assert not (tmp_path / "o").exists()  # a run that cannot start writes nothing


def test_user_mistakes_name_the_file(lite_root, weights, tmp_path, capsys):
    w, _ = weights
    code, _, err = run_tool_in_process("train", ["-c", str(tmp_path / "none.yaml")], capsys)
    assert code == 1 and "config file not found" in err and "none.yaml" in err
    code, _, err = run_tool_in_process("eval", _common(lite_root, tmp_path), capsys)
    assert code == 1 and "no weights given: pass -o Global.pretrained_model" in err
    code, _, err = run_tool_in_process("eval", _common(lite_root, tmp_path, str(tmp_path / "nope")), capsys)
    assert code == 1 and f"pretrained model not found: {tmp_path / 'nope'}.pdparams" in err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    code, _, err = run_tool_in_process("predict", _common(lite_root, tmp_path, w) +
                        ["--input", str(bad), "--output", str(tmp_path / "o")], capsys)
    assert code == 1 and f"cannot read {bad} as an image" in err
    assert not (tmp_path / "o" / "bad.png").exists()
    code, _, err = run_tool_in_process("predict", _common(lite_root, tmp_path, w) +
                        ["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")], capsys)
    assert code == 1 and f"input not found: {tmp_path / 'missing'}" in err
    code, _, err = run_tool_in_process("export_model", _common(lite_root, tmp_path), capsys)
    assert code == 1 and "no weights given" in err


# -- eval ----------------------------------------------------------------------------------

def test_eval_reports_and_saves_metrics(lite_root, weights, tmp_path, capsys):
    w, model = weights
    code, out, err = run_tool_in_process("eval", _common(lite_root, tmp_path, w) + ["--with_input=True"], capsys)
    assert code == 0, err
    with open(tmp_path / "eval_result.json") as f:
        report = json.load(f)
    # The same numbers computed here image by image.
    runner = DygraphRunner(model)
    psnrs, ssims, inputs = [], [], []
    for name in sorted(os.listdir(os.path.join(lite_root, "val", "input"))):
        noisy, _ = processing.read_image(os.path.join(lite_root, "val", "input", name))
        clean, _ = processing.read_image(os.path.join(lite_root, "val", "groundtruth", name))
        restored = np.clip(processing.from_batch(runner(processing.to_batch([noisy])))[0], 0, 1)
        psnrs.append(metrics.psnr(restored, clean))
        ssims.append(metrics.ssim(restored, clean))
        inputs.append(metrics.psnr(noisy, clean))
    assert report["images"] == 4
    assert report["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-4)
    assert report["ssim"] == pytest.approx(np.mean(ssims), abs=1e-5)
    assert report["input_psnr"] == pytest.approx(np.mean(inputs), abs=1e-4)
    assert f"[Eval] psnr: {report['psnr']:.2f}, ssim: {report['ssim']:.4f}, images: 4" in out
    assert "[Eval] input: psnr:" in out
    assert report["protocol"] == {"color": "rgb", "crop_border": 0, "quantize": False,
                                  "description": metrics.describe_protocol({})}
    assert "[Eval] protocol: RGB in [0, 1], peak 1; full image; float output" in out

    code, out, _ = run_tool_in_process("eval", _common(lite_root, tmp_path, w) +
                        ["--ensemble", "--save_json", str(tmp_path / "ens.json")], capsys)
    assert code == 0 and "ensemble: x8" in out
    with open(tmp_path / "ens.json") as f:
        ens = json.load(f)
    assert ens["ensemble"] is True and ens["psnr"] != pytest.approx(report["psnr"], abs=1e-6)


def test_eval_y_protocol_saves_images_and_records_the_protocol(lite_root, weights, tmp_path,
                                                              capsys):
    w, model = weights
    saved = tmp_path / "restored"
    code, out, err = run_tool_in_process("eval", _common(lite_root, tmp_path, w) + [
        "-o", "Metric={color: y, crop_border: 3, quantize: true}", "--save_images", str(saved)],
        capsys)
    assert code == 0, err
    with open(tmp_path / "eval_result.json") as f:
        report = json.load(f)
    names = sorted(os.listdir(os.path.join(lite_root, "val", "input")))
    assert sorted(os.listdir(saved)) == names
    runner = DygraphRunner(model)
    psnrs = []
    for name in names:
        noisy, _ = processing.read_image(os.path.join(lite_root, "val", "input", name))
        restored = np.clip(processing.from_batch(runner(processing.to_batch([noisy])))[0], 0, 1)
        png = cv2.imread(str(saved / name))[:, :, ::-1].astype(np.float64)
        # The 8-bit output (a rerun of the model may flip the rounding of a few values).
        assert np.mean(png != np.round(restored.astype(np.float64) * 255.0)) < 1e-3
        gt = cv2.imread(os.path.join(lite_root, "val", "groundtruth", name))[:, :, ::-1] / 255.0
        y = [16 + 65.481 * im[..., 0] + 128.553 * im[..., 1] + 24.966 * im[..., 2]
             for im in (png / 255.0, gt)]
        mse = np.mean((y[0][3:-3, 3:-3] - y[1][3:-3, 3:-3]) ** 2)
        psnrs.append(10 * np.log10(255.0 ** 2 / mse))
    assert report["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-6)
    assert report["protocol"]["color"] == "y" and report["protocol"]["crop_border"] == 3
    assert report["protocol"]["quantize"] is True
    assert "[Eval] protocol: Y channel (MATLAB rgb2ycbcr coefficients" in out
    assert report["protocol"]["description"] in out


def test_eval_on_sidd_blocks_and_dnd_submission(weights, tmp_path, capsys):
    import h5py
    import scipy.io

    w, model = weights
    rng = np.random.default_rng(0)
    clean = rng.integers(40, 200, (2, 2, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
    scipy.io.savemat(tmp_path / "n.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(tmp_path / "g.mat", {"ValidationGtBlocksSrgb": clean})
    dataset = (f"DataLoader.Eval.dataset={{name: SIDDValidationBlocks, noisy_mat: {tmp_path / 'n.mat'}, "
               f"gt_mat: {tmp_path / 'g.mat'}}}")
    code, out, err = run_tool_in_process("eval", ["-c", LITE_CONFIG, "-o", f"Global.pretrained_model={w}",
                                   f"Global.output_dir={tmp_path}", dataset,
                                   "DataLoader.Eval.sampler.batch_size=3"], capsys)
    assert code == 0, err
    with open(tmp_path / "eval_result.json") as f:
        report = json.load(f)
    runner = DygraphRunner(model)
    blocks = noisy.reshape(-1, 32, 32, 3) / 255.0
    expected = [metrics.psnr(np.clip(runner(b.transpose(2, 0, 1)[None].astype(np.float32))[0]
                                     .transpose(1, 2, 0), 0, 1), c / 255.0)
                for b, c in zip(blocks, clean.reshape(-1, 32, 32, 3))]
    assert report["images"] == 4 and report["psnr"] == pytest.approx(np.mean(expected), abs=1e-4)

    dnd = tmp_path / "DND"
    (dnd / "images_srgb").mkdir(parents=True)
    for i in range(2):
        with h5py.File(dnd / "images_srgb" / f"{i + 1:04d}.mat", "w") as f:
            f["InoisySRGB"] = rng.random((40, 48, 3)).astype(np.float32).T
    with h5py.File(dnd / "info.mat", "w") as f:
        refs = [f.create_dataset(f"b{i}", data=np.array([[1, 1, 24, 24], [5, 9, 36, 40]], float).T).ref
                for i in range(2)]
        f.create_group("info").create_dataset("boundingboxes", data=np.array([refs], dtype=h5py.ref_dtype))
    code, out, err = run_tool_in_process("eval", ["-c", LITE_CONFIG, "-o", f"Global.pretrained_model={w}",
                                   f"DataLoader.Eval.dataset={{name: DNDBenchmark, root: {dnd}}}",
                                   "--save_dir", str(tmp_path / "sub")], capsys)
    assert code == 0, err
    folder = tmp_path / "sub" / "srgb_results_for_server_submission"
    assert f"DND submission written to {folder}" in out
    assert sorted(os.listdir(folder)) == ["0001.mat", "0002.mat"]
    mat = scipy.io.loadmat(folder / "0002.mat")
    crops = mat["Idenoised"].reshape(-1)
    assert [c.shape for c in crops] == [(24, 24, 3), (32, 32, 3)]
    assert crops[1].dtype == np.float32 and 0 <= crops[1].min() and crops[1].max() <= 1


# -- predict -------------------------------------------------------------------------------

def test_predict_keeps_bit_depth_and_layout(lite_root, weights, tmp_path, capsys):
    w, model = weights
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    cv2.imwrite(str(src / "rgb8.png"), rgb8)
    cv2.imwrite(str(src / "rgb16.png"), rng.integers(0, 65536, (30, 33, 3), dtype=np.uint16))
    cv2.imwrite(str(src / "gray.png"), rng.integers(0, 256, (24, 20), dtype=np.uint8))
    rgba = rng.integers(0, 256, (20, 28, 4), dtype=np.uint8)
    cv2.imwrite(str(src / "rgba.png"), rgba)
    cv2.imwrite(str(src / "photo.jpg"), rgb8)
    out = tmp_path / "out"
    code, stdout, err = run_tool_in_process("predict", _common(lite_root, tmp_path, w) +
                             ["--input", str(src), "--output", str(out), "--engine", "dygraph"], capsys)
    assert code == 0, err
    assert "wrote 5 image(s)" in stdout
    read = {n: cv2.imread(str(out / n), cv2.IMREAD_UNCHANGED) for n in os.listdir(out)}
    assert sorted(read) == ["gray.png", "photo.png", "rgb16.png", "rgb8.png", "rgba.png"]
    assert read["rgb8.png"].dtype == np.uint8 and read["rgb8.png"].shape == (37, 45, 3)
    assert read["rgb16.png"].dtype == np.uint16 and read["rgb16.png"].shape == (30, 33, 3)
    assert read["gray.png"].shape == (24, 20)
    assert read["rgba.png"].shape == (20, 28, 4)
    assert np.array_equal(read["rgba.png"][:, :, 3], rgba[:, :, 3])
    # The written image is the model's output through the shared processing path.
    image, info = processing.read_image(str(src / "rgb8.png"))
    expected = processing.to_storage(processing.restore(DygraphRunner(model), image), info)
    assert np.array_equal(read["rgb8.png"], expected)


def test_predict_refuses_to_write_into_the_input_folder(lite_root, weights, tmp_path, capsys):
    w, _ = weights
    src = tmp_path / "photos"
    src.mkdir()
    cv2.imwrite(str(src / "x.png"), np.full((24, 24, 3), 7, np.uint8))
    cv2.imwrite(str(src / "y.jpg"), np.full((24, 24, 3), 9, np.uint8))
    before = folder_bytes(src)
    for inputs in (src, src / "y.jpg"):
        code, _, err = run_tool_in_process("predict", _common(lite_root, tmp_path, w) +
                            ["--input", str(inputs), "--output", str(src)], capsys)
        assert code == 1 and "Traceback" not in err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
        assert "would overwrite its input" in err or "is the folder of the input" in err
        assert folder_bytes(src) == before


def test_predict_restores_every_readable_image_and_lists_the_others(lite_root, weights, tmp_path, capsys):
    w, _ = weights
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "c.png"):
        cv2.imwrite(str(src / name), np.full((24, 32, 3), 100, np.uint8))
    (src / "b.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    code, stdout, err = run_tool_in_process("predict", _common(lite_root, tmp_path, w) +
                             ["--input", str(src), "--output", str(out)], capsys)
    assert code == 1
    assert sorted(os.listdir(out)) == ["a.png", "c.png"]
    assert f"{src / 'a.png'} -> {out / 'a.png'}" in stdout and f"{src / 'c.png'} -> " in stdout
    assert err.splitlines() == ["error: 1 of 3 image(s) could not be restored (2 written):",
                                f"  cannot read {src / 'b.png'} as an image"]


@pytest.mark.parametrize("tile", ["-1", "30"])
def test_predict_tile_is_checked_as_infer_does(lite_root, weights, tmp_path, capsys, tile):
    w, _ = weights
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((24, 24, 3), np.uint8))
    code, _, err = run_tool_in_process("predict", _common(lite_root, tmp_path, w) +
                        ["--input", str(tmp_path / "x.png"), "--output", str(tmp_path / "o"),
                         "--tile", tile], capsys)
    assert code == 1
    assert err == f"error: --tile must be 0 or a positive multiple of 8, got {tile}\n"
    assert not (tmp_path / "o").exists()


def test_tiled_prediction_equals_whole_away_from_seams(lite_root, weights, tmp_path, capsys):
    w, model = weights
    rng = np.random.default_rng(1)
    img16 = (cv2.GaussianBlur(rng.random((176, 200, 3)), (0, 0), 3) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "big.png"), img16)
    outs = {}
    for tile in (None, 96):
        out = tmp_path / f"out{tile}"
        args = ["--input", str(tmp_path / "big.png"), "--output", str(out)]
        if tile:
            args += ["--tile", str(tile), "--tile_overlap=32"]
        code, _, err = run_tool_in_process("predict", _common(lite_root, tmp_path, w) + args, capsys)
        assert code == 0, err
        outs[tile] = cv2.imread(str(out / "big.png"), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535
    diff = np.abs(outs[96] - outs[None])
    # Keep pixels 24 px or more from any tile edge inside the image.
    keep = np.ones(diff.shape[:2], bool)
    for axis, size in ((0, 176), (1, 200)):
        starts, length = processing.tile_layout(size, 96, 32)
        edges = {e for s in starts for e in (s, s + length)} - {0, size}
        assert len(edges) >= 2
        for e in edges:
            sl = [slice(None), slice(None)]
            sl[axis] = slice(max(e - 24, 0), e + 24)
            keep[tuple(sl)] = False
    assert keep.sum() > 1000
    assert diff[keep].max() < 1e-3
    assert diff.max() > diff[keep].max()  # the seams are where tiles differ at all


# -- export --------------------------------------------------------------------------------

def test_export_matches_dygraph_with_any_size(lite_root, weights, tmp_path, capsys):
    w, model = weights
    code, out, err = run_tool_in_process("export_model", _common(lite_root, tmp_path, w) +
                          ["-o", f"Global.save_inference_dir={tmp_path / 'b'}"], capsys)
    assert code == 0, err
    assert f"wrote {tmp_path / 'b' / 'inference.json'}" in out
    assert os.path.isfile(tmp_path / "b" / "inference.pdiparams")
    assert not os.path.exists(tmp_path / "b" / "inference.pdmodel")
    static = paddle.jit.load(str(tmp_path / "b" / "inference"))
    x = np.random.default_rng(0).random((1, 3, 21, 30)).astype(np.float32)
    got = static(paddle.to_tensor(x))
    got = (got[0] if isinstance(got, (list, tuple)) else got).numpy()
    assert got.shape == (1, 3, 21, 30)
    assert np.abs(got - DygraphRunner(model)(x)).max() < 1e-4


def test_export_flags(lite_root, weights, tmp_path, capsys, monkeypatch):
    """--save_dir wins over Global.save_inference_dir; --legacy_format reaches the exporter."""
    import ppmirnet.export

    calls = []
    monkeypatch.setattr(ppmirnet.export, "export_inference_model",
                        lambda model, save_dir, legacy_format=False, forms=None: calls.append((save_dir, legacy_format)) or [])
    w, _ = weights
    base = _common(lite_root, tmp_path, w) + ["-o", f"Global.save_inference_dir={tmp_path / 'cfg'}"]
    for flags, expected in (([], (str(tmp_path / "cfg"), False)),
                            (["--save_dir", str(tmp_path / "a"), "--legacy_format"], (str(tmp_path / "a"), True)),
                            ([f"--save_dir={tmp_path / 'a'}", "--legacy_format=False"], (str(tmp_path / "a"), False))):
        assert run_tool_in_process("export_model", base + flags, capsys)[0] == 0
        assert calls[-1] == expected


# -- data tools ----------------------------------------------------------------------------

def test_make_lite_data_tool(tmp_path, capsys):
    code, out, _ = run_tool_in_process("make_lite_data", ["--out", str(tmp_path / "lite")], capsys)
    assert code == 0 and "wrote 12 training and 4 validation pairs" in out
    assert len(os.listdir(tmp_path / "lite" / "val" / "input")) == 4
    code, out, _ = run_tool_in_process("make_lite_data", [f"--out={tmp_path / 'lite'}"], capsys)
    assert code == 0 and out == (f"{tmp_path / 'lite'} already exists (the lite denoise set); "
                                 f"kept (pass --overwrite to regenerate it)\n")
    code, _, err = run_tool_in_process("make_lite_data", ["--out", str(tmp_path / "lite"),
                                                          "--task", "lowlight"], capsys)
    assert code == 1 and err == (f"error: {tmp_path / 'lite'} already holds the lite denoise set; "
                                 f"give another folder, or pass overwrite to replace that set\n")
    # A set in the lite layout made by hand is kept, with --overwrite too.
    mine = tmp_path / "mine"
    (mine / "val" / "input").mkdir(parents=True)
    code, out, _ = run_tool_in_process("make_lite_data", ["--out", str(mine)], capsys)
    assert code == 0 and "a set in the lite layout, not made by this tool); kept" in out
    code, _, err = run_tool_in_process("make_lite_data", ["--out", str(mine), "--overwrite"],
                                       capsys)
    assert code == 1 and "is no lite set made by this project" in err
    assert os.listdir(mine) == ["val"] and os.listdir(mine / "val") == ["input"]


def test_prepare_sidd_tool(tmp_path, capsys):
    scene = tmp_path / "Data" / "0001_001_S6_00100_00060_3200_L"
    scene.mkdir(parents=True)
    img = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(scene / "0001_NOISY_SRGB_010.PNG"), img)
    cv2.imwrite(str(scene / "0001_GT_SRGB_010.PNG"), img)
    code, out, err = run_tool_in_process("prepare_sidd", ["--src", str(tmp_path / "Data"), "--out", str(tmp_path / "p"),
                                           "--patch_size=16", "--num_patches=4"], capsys)
    assert code == 0, err
    assert "wrote 4 patch pairs from 1 images" in out
    assert sorted(os.listdir(tmp_path / "p" / "input")) == [f"0001_{j:03d}.png" for j in range(1, 5)]
    code, _, err = run_tool_in_process("prepare_sidd", ["--src", str(tmp_path / "none")], capsys)
    assert code == 1 and f"SIDD-Medium folder not found: {tmp_path / 'none'}" in err

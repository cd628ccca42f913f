"""Datasets, transforms, samplers, the lite set, SIDD and DND formats."""

import json
import os
import time

import cv2
import numpy as np
import pytest

from ppmirnet.data import lite
from ppmirnet.data.dnd import DNDBenchmark, bundle_dnd_submission, crop_box
from ppmirnet.data.paired import PairedImageFolder, find_pairs
from ppmirnet.data.sampler import SeededBatchSampler, ShardSampler
from ppmirnet.data.sidd import SIDDValidationBlocks, load_mat_array, prepare_sidd_patches
from ppmirnet.data.transforms import dihedral
from ppmirnet.errors import UserError


@pytest.fixture(scope="module")
def lite_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("lite") / "lite"
    tic = time.perf_counter()
    summary = lite.make_lite_data(str(out))
    return str(out), summary, time.perf_counter() - tic


def _tree_bytes(root):
    data = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data[os.path.relpath(path, root)] = f.read()
    return data


# -- lite set --------------------------------------------------------------------------

def test_lite_set_layout_size_and_speed(lite_set):
    root, summary, seconds = lite_set
    for split, n in (("train", 12), ("val", 4)):
        for sub in ("input", "groundtruth"):
            files = sorted(os.listdir(os.path.join(root, split, sub)))
            assert len(files) == n and all(f.endswith(".png") for f in files)
    size = sum(len(b) for b in _tree_bytes(root).values())
    assert size < 4 * 2 ** 20, f"lite set is {size / 2**20:.1f} MB"
    assert seconds < 20
    # Noisy enough to learn from, not destroyed: the input PSNR of SIDD-like noise.
    assert 20 < summary["train_input_psnr_mean"] < 28
    assert 20 < summary["val_input_psnr_mean"] < 28
    clean = cv2.imread(os.path.join(root, "val", "groundtruth", "00_coffee_0.png"))
    assert clean.shape == (128, 128, 3)


def test_lite_set_is_seeded(lite_set, tmp_path):
    root, _, _ = lite_set
    again = tmp_path / "again"
    lite.make_lite_data(str(again))
    assert _tree_bytes(str(again)) == _tree_bytes(root)
    other = tmp_path / "other"
    lite.make_lite_data(str(other), seed=7)
    a = cv2.imread(os.path.join(root, "train", "input", "00_astronaut_0.png"))
    b = cv2.imread(str(other / "train" / "input" / "00_astronaut_0.png"))
    assert not np.array_equal(a, b)
    with pytest.raises(UserError, match=f"{again} already holds the lite denoise set; give "
                                        f"another folder, or pass overwrite to replace that set"):
        lite.make_lite_data(str(again))


def test_camera_noise_depends_on_the_signal():
    rng = np.random.default_rng(0)
    dark = np.full((64, 64, 3), 0.45)  # dark enough to differ, bright enough not to clip at 0
    bright = np.full((64, 64, 3), 0.9)
    kw = dict(peak=60.0, read_std=0.005, rho=0.3)
    noise_dark = lite.srgb_to_linear(lite.add_camera_noise(dark, rng, **kw)) - lite.srgb_to_linear(dark)
    noise_bright = lite.srgb_to_linear(lite.add_camera_noise(bright, rng, **kw)) - lite.srgb_to_linear(bright)
    # Shot noise: variance grows with the linear signal (Poisson-Gaussian).
    expected = lambda x: np.sqrt(lite.srgb_to_linear(x) / 60.0 + 0.005 ** 2)  # noqa: E731
    assert noise_bright.std() == pytest.approx(expected(0.9), rel=0.1)
    assert noise_dark.std() == pytest.approx(expected(0.45), rel=0.1)
    assert noise_bright.std() > 1.5 * noise_dark.std()
    # Channel correlation rho.
    flat = noise_bright.reshape(-1, 3)
    assert np.corrcoef(flat.T)[0, 1] == pytest.approx(0.3, abs=0.06)


def _read_rgb(path):
    return cv2.imread(str(path))[:, :, ::-1].astype(np.float64) / 255.0


@pytest.mark.parametrize("scale", [2, 4])
def test_lite_sr_set_is_the_bicubic_of_the_area_downscale_plus_mild_noise(tmp_path, scale):
    root = tmp_path / "sr"
    summary = lite.make_lite_data(str(root), task="sr", scale=scale)
    assert summary["task"] == "sr" and summary["scale"] == scale
    with open(root / "lite.json") as f:
        assert json.load(f)["train"][0]["scale"] == scale
    diffs, psnrs = [], []
    for name in sorted(os.listdir(root / "val" / "input")):
        lr = _read_rgb(root / "val" / "input" / name)
        hr = _read_rgb(root / "val" / "groundtruth" / name)
        assert lr.shape == hr.shape == (128, 128, 3)  # LR at the HR size, as RealSR v1
        h, w = hr.shape[:2]
        # The noise-free degradation, written out here with OpenCV.
        small = cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
        bicubic = np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)
        diffs.append(np.sqrt(np.mean((lr - bicubic) ** 2)) * 255)
        psnrs.append(10 * np.log10(1 / np.mean((lr - hr) ** 2)))
    # Mild noise (plus 8-bit rounding) around the bicubic image: 1-3 levels of 255.
    assert all(0.5 < d < 3.0 for d in diffs), diffs
    # Blurrier at x4 than at x2, and far from the clean image in both.
    assert (24 < np.mean(psnrs) < 30) if scale == 4 else (28 < np.mean(psnrs) < 34), psnrs
    again = tmp_path / "again"
    lite.make_lite_data(str(again), task="sr", scale=scale)
    assert _tree_bytes(str(again)) == _tree_bytes(str(root))


def test_lite_lowlight_set_is_darkened_in_linear_light(tmp_path):
    root = tmp_path / "lol"
    summary = lite.make_lite_data(str(root), task="lowlight")
    assert summary["task"] == "lowlight"
    for record in summary["val"]:
        low = _read_rgb(root / "val" / "input" / record["file"])
        high = _read_rgb(root / "val" / "groundtruth" / record["file"])
        lin_low, lin_high = lite.srgb_to_linear(low), lite.srgb_to_linear(high)
        # dark = (exposure * lin) ** gamma: the mean linear level follows, up to noise.
        expected = np.mean((record["exposure"] * lin_high) ** record["gamma"])
        assert np.mean(lin_low) == pytest.approx(expected, rel=0.1)
        assert 0.06 <= record["exposure"] <= 0.2 and 1.0 <= record["gamma"] <= 1.3
        assert np.mean(low) < 0.5 * np.mean(high)
    # As dark as LOL's inputs (7-8 dB there).
    assert 6 < summary["val_input_psnr_mean"] < 12


def test_lite_set_of_another_task_is_refused(tmp_path):
    root = tmp_path / "lite"
    assert lite.ensure_lite_data(str(root), log=lambda m: None, task="sr", scale=2)
    assert not lite.ensure_lite_data(str(root), log=lambda m: None, task="sr", scale=2)
    with pytest.raises(UserError, match=r"holds the lite sr x2 set \(its lite.json says so\), "
                                        r"not the lite sr x4 set"):
        lite.ensure_lite_data(str(root), task="sr", scale=4)
    with pytest.raises(UserError, match=r"holds the lite sr x2 set .*, not the lite lowlight set"):
        lite.ensure_lite_data(str(root), task="lowlight")
    with pytest.raises(UserError, match=r"scales \(2, 4\), not 3"):
        lite.make_lite_data(str(tmp_path / "x3"), task="sr", scale=3)
    assert not (tmp_path / "x3").exists()


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, _, names in os.walk(root) for n in names)


def test_the_lite_set_of_another_task_is_named_and_never_offered_for_deletion(lite_set, tmp_path):
    """The denoising set given to the SR or low-light config: another folder is the way out."""
    root, _, _ = lite_set
    before = _files(root)
    parent = os.path.dirname(root)
    for task, scale, folder in [("sr", 4, "lite_sr_x4"), ("lowlight", 4, "lite_lol")]:
        with pytest.raises(UserError) as err:
            lite.ensure_lite_data(root, log=lambda m: None, task=task, scale=scale)
        message = str(err.value)
        wanted = lite.set_name(task, scale if task == "sr" else None)
        assert message == (
            f"{root} holds the lite denoise set (its lite.json says so), not the lite {wanted} "
            f"set this dataset needs; set dataset.root to another folder, e.g. "
            f"{os.path.join(parent, folder)} (the {wanted} set is generated there), or train on "
            f"{root} with configs/mirnet_lite.yaml")
        assert "remove" not in message and "delete" not in message
    assert _files(root) == before

    # A folder of the default name of the wanted set, holding another set: a name beside it.
    sr_named = tmp_path / "lite_sr_x4"
    lite.make_lite_data(str(sr_named), task="lowlight")
    with pytest.raises(UserError, match=f"e.g. {sr_named}_sr_x4 .*, or train on {sr_named} with "
                                        f"configs/mirnet_lite_lol.yaml$"):
        lite.ensure_lite_data(str(sr_named), task="sr", scale=4)


def test_make_lite_data_replaces_only_a_set_it_made(tmp_path):
    mine = tmp_path / "mine"
    (mine / "val").mkdir(parents=True)
    (mine / "val" / "holiday.png").write_bytes(b"precious")
    (mine / "lite.json").write_text('{"notes": "my own"}')  # not one written by make_lite_data
    with pytest.raises(UserError) as err:
        lite.make_lite_data(str(mine), overwrite=True)
    assert str(err.value) == (f"{mine} already exists and is no lite set made by this project "
                              f"(no lite.json of its own): it is left as it is; give another "
                              f"folder")
    assert _files(mine) == ["lite.json", "val/holiday.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert lite.make_lite_data(str(empty))["task"] == "denoise"  # an empty folder is used
    lite.make_lite_data(str(empty), overwrite=True, task="lowlight")  # a set it made: replaced
    assert lite.generated_set(str(empty)) == ("lowlight", None)


# -- paired folders ----------------------------------------------------------------------

def test_paired_folder_items(lite_set):
    root, _, _ = lite_set
    ds = PairedImageFolder(os.path.join(root, "train"), patch_size=32, augment=True, repeat=3)
    assert len(ds) == 36
    noisy, clean = ds[(5, 123)]
    assert noisy.shape == clean.shape == (3, 32, 32) and noisy.dtype == np.float32
    again = ds[(5, 123)]
    assert np.array_equal(again[0], noisy) and np.array_equal(again[1], clean)
    other = ds[(5, 124)]
    assert not np.array_equal(other[1], clean)
    full_noisy, full_clean = ds[5]
    assert full_noisy.shape == (3, 192, 192)
    assert 0.0 <= full_clean.min() and full_clean.max() <= 1.0
    # The crop pairs noisy and clean at the same place: the noisy crop is
    # much closer to its own clean crop than to the clean crop of another seed.
    assert np.abs(noisy - clean).mean() < np.abs(noisy - other[1]).mean()


def test_missing_partner_and_folder_are_named(tmp_path):
    for sub in ("input", "groundtruth"):
        (tmp_path / sub).mkdir()
    img = np.zeros((16, 16, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "input" / "a.png"), img)
    cv2.imwrite(str(tmp_path / "groundtruth" / "a.png"), img)
    cv2.imwrite(str(tmp_path / "input" / "b.png"), img)
    with pytest.raises(UserError, match=r"input/b.png has no ground truth in .*groundtruth"):
        find_pairs(str(tmp_path))
    os.remove(tmp_path / "input" / "b.png")
    cv2.imwrite(str(tmp_path / "groundtruth" / "c.png"), img)
    with pytest.raises(UserError, match=r"groundtruth/c.png has no noisy input"):
        find_pairs(str(tmp_path))
    with pytest.raises(UserError, match=r"dataset folder not found: .*nowhere/input"):
        find_pairs(str(tmp_path / "nowhere"))


def test_dihedral_gives_the_eight_variants():
    img = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    variants = {dihedral(img, m).tobytes() + bytes(dihedral(img, m).shape) for m in range(8)}
    assert len(variants) == 8
    assert np.array_equal(dihedral(img, 0), img)


# -- samplers ----------------------------------------------------------------------------

def test_seeded_sampler_is_reproducible_and_resumable():
    a = list(SeededBatchSampler(20, 4, seed=3))
    assert a == list(SeededBatchSampler(20, 4, seed=3))
    assert a != list(SeededBatchSampler(20, 4, seed=4))
    assert sorted(i for b in a for i, _ in b) == list(range(20))
    s = SeededBatchSampler(20, 4, seed=3)
    s.set_epoch(2)
    epoch2 = list(s)
    assert epoch2 != a
    s.set_epoch(2, start_batch=3)
    assert len(s) == 2 and list(s) == epoch2[3:]


def test_cards_split_each_global_batch():
    single = list(SeededBatchSampler(24, 4, seed=1, drop_last=True))
    cards = [list(SeededBatchSampler(24, 2, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(cards[0]) == len(cards[1]) == len(single) == 6
    for b, (x, y) in enumerate(zip(*cards)):
        assert x + y == single[b]


def test_shard_sampler_covers_every_sample_once():
    shards = [list(ShardSampler(7, 2, rank=r, world_size=3)) for r in range(3)]
    seen = sorted(i for shard in shards for batch in shard for i in batch)
    assert seen == list(range(7))


# -- SIDD --------------------------------------------------------------------------------

def test_sidd_validation_blocks(tmp_path):
    import scipy.io

    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    clean = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": clean})
    ds = SIDDValidationBlocks(str(tmp_path / "ValidationNoisyBlocksSrgb.mat"),
                              str(tmp_path / "ValidationGtBlocksSrgb.mat"))
    assert len(ds) == 6
    n, c = ds[4]  # image 1, block 1
    assert n.shape == (3, 16, 16)
    assert np.allclose(n.transpose(1, 2, 0), noisy[1, 1] / 255.0)
    assert np.allclose(c.transpose(1, 2, 0), clean[1, 1] / 255.0)
    assert len(SIDDValidationBlocks(str(tmp_path / "ValidationNoisyBlocksSrgb.mat"),
                                    str(tmp_path / "ValidationGtBlocksSrgb.mat"), limit=2)) == 2
    with pytest.raises(UserError, match=r"SIDD validation file not found: .*missing.mat"):
        SIDDValidationBlocks(str(tmp_path / "missing.mat"), str(tmp_path / "ValidationGtBlocksSrgb.mat"))


def test_mat_v73_arrays_are_read_with_h5py(tmp_path):
    import h5py

    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    with h5py.File(tmp_path / "v73.mat", "w") as f:
        f["X"] = arr.T  # MATLAB v7.3 stores column-major, so h5py sees the transpose
    assert np.array_equal(load_mat_array(str(tmp_path / "v73.mat"), "X"), arr)


def _fake_sidd_medium(root, n_scenes=2, size=(40, 48)):
    rng = np.random.default_rng(1)
    for s in range(n_scenes):
        scene = root / f"{s + 1:04d}_001_S6_00100_00060_3200_L"
        scene.mkdir(parents=True)
        for k in ("010", "011"):
            clean = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            cv2.imwrite(str(scene / f"{s + 1:04d}_GT_SRGB_{k}.PNG"), clean)
            cv2.imwrite(str(scene / f"{s + 1:04d}_NOISY_SRGB_{k}.PNG"), 255 - clean)


def test_prepare_sidd_patches_is_seeded_and_paired(tmp_path):
    src = tmp_path / "Data"
    _fake_sidd_medium(src)
    n = prepare_sidd_patches(str(src), str(tmp_path / "a"), patch_size=16, num_patches=3, seed=5)
    assert n == 12
    names = sorted(os.listdir(tmp_path / "a" / "input"))
    assert names == sorted(os.listdir(tmp_path / "a" / "groundtruth")) and len(names) == 12
    prepare_sidd_patches(str(src), str(tmp_path / "b"), patch_size=16, num_patches=3, seed=5, workers=2)
    assert _tree_bytes(str(tmp_path / "a")) == _tree_bytes(str(tmp_path / "b"))
    noisy = cv2.imread(str(tmp_path / "a" / "input" / names[0]))
    clean = cv2.imread(str(tmp_path / "a" / "groundtruth" / names[0]))
    assert noisy.shape == (16, 16, 3) and np.array_equal(noisy, 255 - clean)
    os.remove(src / "0002_001_S6_00100_00060_3200_L" / "0002_GT_SRGB_011.PNG")
    with pytest.raises(UserError, match=r"0002_NOISY_SRGB_011.PNG has no ground truth"):
        prepare_sidd_patches(str(src), str(tmp_path / "c"), patch_size=16, num_patches=1)


# -- DND ---------------------------------------------------------------------------------

def _fake_dnd(root, n_images=2, boxes_per_image=3):
    import h5py

    rng = np.random.default_rng(2)
    (root / "images_srgb").mkdir(parents=True)
    images, boxes = [], []
    for i in range(n_images):
        img = rng.random((40, 50, 3)).astype(np.float32)
        with h5py.File(root / "images_srgb" / f"{i + 1:04d}.mat", "w") as f:
            f["InoisySRGB"] = img.T
        b = np.array([[1 + k, 2 + k, 10 + k, 14 + k] for k in range(boxes_per_image)], float)
        images.append(img)
        boxes.append(b)
    with h5py.File(root / "info.mat", "w") as f:
        info = f.create_group("info")
        refs = []
        for i, b in enumerate(boxes):
            ds = f.create_dataset(f"box{i}", data=b.T)
            refs.append(ds.ref)
        info.create_dataset("boundingboxes", data=np.array([refs], dtype=h5py.ref_dtype))
    return images, boxes


def test_dnd_crops_and_submission(tmp_path):
    import scipy.io

    images, boxes = _fake_dnd(tmp_path / "DND")
    ds = DNDBenchmark(str(tmp_path / "DND"))
    assert len(ds) == 6
    crop, key = ds[4]  # image 1, box 1: rows 1..11, columns 2..15 (0-based, end exclusive)
    assert int(key) == 4
    assert np.array_equal(crop.transpose(1, 2, 0), images[1][1:11, 2:15])
    assert np.array_equal(crop_box(images[0], boxes[0][0]), images[0][0:10, 1:14])

    crops = {(i, b): ds[i * 3 + b][0].transpose(1, 2, 0) for i in range(2) for b in range(3)}
    folder = bundle_dnd_submission(crops, str(tmp_path / "out"), boxes_per_image=3)
    assert folder.endswith("srgb_results_for_server_submission")
    assert sorted(os.listdir(folder)) == ["0001.mat", "0002.mat"]
    mat = scipy.io.loadmat(os.path.join(folder, "0002.mat"))
    assert mat["Idenoised"].shape == (1, 3) and mat["Idenoised"].dtype == object
    assert mat["Idenoised"][0, 1].dtype == np.float32
    assert np.array_equal(mat["Idenoised"][0, 1], crops[(1, 1)])
    assert not bool(mat["israw"].item()) and str(mat["eval_version"][0]) == "1.0"
    with pytest.raises(ValueError, match="missing denoised crop 2 of DND image 1"):
        bundle_dnd_submission({(0, 0): crops[(0, 0)], (0, 1): crops[(0, 1)]}, str(tmp_path / "x"), 3)
    with pytest.raises(UserError, match="DND info file not found"):
        DNDBenchmark(str(tmp_path / "nowhere"))

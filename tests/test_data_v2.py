"""MIRNet-v2's data: official folder names, and DPDD's 16-bit dual-pixel triplets."""

import os

import cv2
import numpy as np
import pytest

from ppmirnet.data.builder import build_dataset
from ppmirnet.errors import UserError


def _write16(path, rgb16):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, rgb16[:, :, ::-1])


@pytest.fixture()
def dpdd(tmp_path):
    rng = np.random.default_rng(0)
    images = {}
    for name in ("a", "b"):
        for folder in ("inputL", "inputR", "target"):
            img = rng.integers(0, 65536, (20, 24, 3), dtype=np.uint16)
            img[0, 0] = [1, 2, 65535]  # values no 8-bit image can hold
            _write16(str(tmp_path / folder / f"{name}.png"), img)
            images[folder, name] = img
    return tmp_path, images


def test_dual_pixel_views_are_stacked_at_16_bit_precision(dpdd):
    root, images = dpdd
    ds = build_dataset({"name": "DualPixelFolder", "root": str(root), "patch_size": None,
                        "augment": False, "repeat": 1, "cache": False, "left_dir": "inputL",
                        "right_dir": "inputR", "target_dir": "target"})
    assert len(ds) == 2
    views, target = ds[1]
    assert views.shape == (6, 20, 24) and target.shape == (3, 20, 24)
    np.testing.assert_array_equal(views[:3].transpose(1, 2, 0) * 65535, images["inputL", "b"])
    np.testing.assert_array_equal(np.rint(views[3:].transpose(1, 2, 0) * 65535),
                                  images["inputR", "b"])
    np.testing.assert_array_equal(np.rint(target.transpose(1, 2, 0) * 65535), images["target", "b"])
    assert views[0, 0, 0] == np.float32(1 / 65535)


def test_dual_pixel_crops_and_flips_apply_to_all_three(dpdd):
    root, images = dpdd
    ds = build_dataset({"name": "DualPixelFolder", "root": str(root), "patch_size": 8,
                        "augment": True, "repeat": 1, "cache": True, "left_dir": "inputL",
                        "right_dir": "inputR", "target_dir": "target"})
    full_views, full_target = ds[0]
    for seed in range(5):
        views, target = ds[(0, seed)]
        assert views.shape == (6, 8, 8) and target.shape == (3, 8, 8)
        # The same crop and transform of each image: locate the target crop's
        # transform among the 8 dihedral forms of every 8x8 window of the target,
        # then the views must be that window of the views.
        found = False
        for y in range(20 - 7):
            for x in range(24 - 7):
                for k in range(4):
                    for flip in (False, True):
                        def t(a):
                            a = np.rot90(a[:, y:y + 8, x:x + 8], k, axes=(1, 2))
                            return a[:, :, ::-1] if flip else a
                        if np.array_equal(t(full_target), target):
                            found = found or np.array_equal(t(full_views), views)
        assert found, seed


def test_missing_right_view_is_named(dpdd):
    root, _ = dpdd
    os.remove(root / "inputR" / "b.png")
    with pytest.raises(UserError, match="target/b.png has no noisy input in .*inputR"):
        build_dataset({"name": "DualPixelFolder", "root": str(root), "patch_size": None,
                       "augment": False, "repeat": 1, "cache": False, "left_dir": "inputL",
                       "right_dir": "inputR", "target_dir": "target"})


def test_paired_folder_with_official_folder_names(tmp_path):
    rng = np.random.default_rng(1)
    for folder in ("input_crops", "target_crops"):
        os.makedirs(tmp_path / folder)
        cv2.imwrite(str(tmp_path / folder / "p.png"), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    ds = build_dataset({"name": "PairedImageFolder", "root": str(tmp_path), "patch_size": None,
                        "augment": False, "repeat": 1, "cache": False,
                        "input_dir": "input_crops", "target_dir": "target_crops"})
    assert len(ds) == 1 and ds[0][0].shape == (3, 8, 8)

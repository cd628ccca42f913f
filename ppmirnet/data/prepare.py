"""Training patches and test folders from the raw downloads of the paper's datasets.

Every dataset becomes the ``input/`` + ``groundtruth/`` layout of
:class:`ppmirnet.data.paired.PairedImageFolder`. Only the pairing of the raw
files differs (:data:`DATASETS`, a finder each):

- ``sidd``: SIDD-Medium sRGB, ``<scene>/*_NOISY_SRGB_*.PNG`` with ``*_GT_SRGB_*``;
- ``realsr``: RealSR version 1, ``<camera>/<Train|Test>/<scale>/*_LR<scale>.png``
  with ``*_HR.png`` of the same scene (LR already at the HR size);
- ``lol``: LOL, ``low/*.png`` with ``high/*.png`` of the same name
  (``our485`` for training, ``eval15`` for testing);
- ``fivek``: MIT-Adobe FiveK exported to sRGB, ``input/*`` with ``expertC/*``;
- ``paired``: any ``input/`` + ``groundtruth/`` folder (patches of user data).

:func:`cut_patches` cuts seeded random patch pairs (training);
:func:`copy_pairs` writes the whole pairs under their scene names (testing).
"""

import os
import re
import shutil
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

from ..errors import UserError
from ..utils.io import atomic_path

REALSR_CAMERAS = ("Canon", "Nikon")
REALSR_SCALES = (2, 3, 4)


def _need_dir(path, what, hint):
    if not os.path.isdir(path):
        raise UserError(f"{what} not found: {path} ({hint}; see data/README.md)")


def find_folder_pairs(src, input_dir, gt_dir, what):
    """``[(name, input path, gt path), ...]`` of two folders pairing files by name without extension."""
    from .paired import find_pairs_in

    _need_dir(src, f"{what} folder", f"expected {input_dir}/ and {gt_dir}/ in it")
    pairs = find_pairs_in(os.path.join(src, input_dir), os.path.join(src, gt_dir))
    return [(os.path.splitext(os.path.basename(i))[0], i, g) for i, g in pairs]


def find_sidd(src, scale=None):
    from .sidd import find_sidd_medium_pairs

    pairs = find_sidd_medium_pairs(src)
    return [(f"{i + 1:04d}", n, c) for i, (n, c) in enumerate(pairs)]


def find_realsr(src, scale, split="Train"):
    """RealSR v1 pairs of one scale: ``(scene, LR path, HR path)`` of every camera, sorted."""
    if scale not in REALSR_SCALES:
        raise UserError(f"RealSR has scales {', '.join(map(str, REALSR_SCALES))}, not {scale} "
                        f"(pass --scale)")
    _need_dir(src, "RealSR folder", "expected Canon/ and Nikon/ of RealSR version 1")
    pattern = re.compile(rf"^(.*)_LR{scale}\.png$", re.IGNORECASE)
    pairs = []
    for camera in REALSR_CAMERAS:
        folder = os.path.join(src, camera, split, str(scale))
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            m = pattern.match(name)
            if not m:
                continue
            hr = os.path.join(folder, f"{m.group(1)}_HR.png")
            if not os.path.isfile(hr):
                raise UserError(f"{os.path.join(folder, name)} has no HR image {hr}")
            pairs.append((m.group(1), os.path.join(folder, name), hr))
    if not pairs:
        raise UserError(f"no <camera>/{split}/{scale}/*_LR{scale}.png images in {src} "
                        f"(cameras {', '.join(REALSR_CAMERAS)}; see data/README.md)")
    return pairs


DATASETS = {
    "sidd": lambda src, scale, split: find_sidd(src),
    "realsr": lambda src, scale, split: find_realsr(src, scale, split),
    "lol": lambda src, scale, split: find_folder_pairs(src, "low", "high", "LOL"),
    "fivek": lambda src, scale, split: find_folder_pairs(src, "input", "expertC", "FiveK"),
    "paired": lambda src, scale, split: find_folder_pairs(src, "input", "groundtruth", "paired"),
}


def find_dataset_pairs(dataset, src, scale=None, split="Train"):
    """The ``(name, input, ground truth)`` pairs of a raw ``dataset`` folder (see the module doc)."""
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; expected one of: {', '.join(DATASETS)}")
    return DATASETS[dataset](src, scale, split)


def _read_pair(input_path, gt_path):
    images = []
    for path in (input_path, gt_path):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise UserError(f"cannot read {path} as an image")
        images.append(img)
    if images[0].shape != images[1].shape:
        h, w = images[0].shape[:2]
        gh, gw = images[1].shape[:2]
        raise UserError(f"{input_path} is {w}x{h} but {gt_path} is {gw}x{gh}")
    return images


def _write_png(path, img, source):
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise UserError(f"cannot encode a patch of {source}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())


def _cut_one(job):
    i, input_path, gt_path, out, patch_size, num_patches, seed = job
    inp, gt = _read_pair(input_path, gt_path)
    h, w = inp.shape[:2]
    if h < patch_size or w < patch_size:
        raise UserError(f"{input_path} ({w}x{h}) is smaller than a {patch_size} patch")
    # One generator per image: the patches do not depend on the number of workers.
    rng = np.random.default_rng([seed & 0xFFFFFFFF, i])
    for j in range(num_patches):
        top = int(rng.integers(0, h - patch_size + 1))
        left = int(rng.integers(0, w - patch_size + 1))
        name = f"{i + 1:04d}_{j + 1:03d}.png"
        for sub, img in (("input", inp), ("groundtruth", gt)):
            _write_png(os.path.join(out, sub, name),
                       img[top:top + patch_size, left:left + patch_size], input_path)
    return i


def cut_patches(pairs, out, patch_size=256, num_patches=300, seed=0, workers=1, progress=None):
    """Cut ``num_patches`` random ``patch_size`` patch pairs from each of ``pairs``.

    ``pairs``: ``(input path, gt path)`` or ``(name, input path, gt path)``.
    Writes ``out/input/NNNN_PPP.png`` and ``out/groundtruth/NNNN_PPP.png``
    (image number, patch number, both 1-based); returns the number of pairs
    written. Seeded: the same ``seed`` gives the same patches with any number
    of ``workers``. ``progress`` is called with each finished image index.
    """
    if patch_size < 8 or num_patches < 1:
        raise UserError("the patch size must be >= 8 and the number of patches >= 1")
    for sub in ("input", "groundtruth"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    jobs = [(i, p[-2], p[-1], out, patch_size, num_patches, seed) for i, p in enumerate(pairs)]
    if workers <= 1:
        for job in jobs:
            _cut_one(job)
            if progress:
                progress(job[0])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i in pool.map(_cut_one, jobs):
                if progress:
                    progress(i)
    return len(pairs) * num_patches


def copy_pairs(pairs, out, progress=None):
    """Write whole ``(name, input, gt)`` pairs as ``out/input/<name>.png`` + ``out/groundtruth/<name>.png``.

    PNG files are copied byte for byte; other formats are converted to PNG.
    Returns the number of pairs written.
    """
    names = [p[0] for p in pairs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise UserError(f"two pairs would both be written as {dup}.png")
    for sub in ("input", "groundtruth"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for i, (name, input_path, gt_path) in enumerate(pairs):
        inp, gt = _read_pair(input_path, gt_path)
        for sub, path, img in (("input", input_path, inp), ("groundtruth", gt_path, gt)):
            dst = os.path.join(out, sub, name + ".png")
            if path.lower().endswith(".png"):
                with atomic_path(dst) as tmp:
                    shutil.copyfile(path, tmp)
            else:
                _write_png(dst, img, path)
        if progress:
            progress(i)
    return len(pairs)

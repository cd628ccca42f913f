"""SIDD: validation blocks (.mat) as an eval dataset, and training patches from SIDD-Medium.

SIDD validation ships as two MATLAB files, ``ValidationNoisyBlocksSrgb.mat``
and ``ValidationGtBlocksSrgb.mat``, each a uint8 array of 40 images x 32
blocks x 256 x 256 x 3 under the key of the file's name. The paper denoises
each of the 1280 blocks alone and averages PSNR and SSIM over blocks.

Training uses 256x256 patch pairs cut at random from the 320 SIDD-Medium
sRGB image pairs (``<scene>/<id>_NOISY_SRGB_<n>.PNG`` with its
``<id>_GT_SRGB_<n>.PNG``); :func:`prepare_sidd_patches` writes them in the
``input/`` + ``groundtruth/`` layout of :class:`PairedImageFolder`.
"""

import os

import numpy as np

from ..errors import UserError
from .paired import to_chw

SIDD_HINT = "get 'SIDD Validation Data' (sRGB) from the SIDD website; see data/README.md"


def load_mat_array(path, key):
    """Read the array ``key`` of a MATLAB file, v5 (scipy) or v7.3 (HDF5, via h5py).

    v7.3 files store arrays transposed; they are transposed back, so both
    give the array MATLAB shows.
    """
    if not os.path.isfile(path):
        raise UserError(f"file not found: {path}")
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # MATLAB v7.3
        with h5py.File(path, "r") as f:
            if key not in f:
                raise UserError(f"{path} has no variable {key!r} (it has: {', '.join(f.keys())})")
            return np.array(f[key]).T
    try:
        data = scipy.io.loadmat(path, variable_names=[key])
    except (ValueError, OSError, NotImplementedError) as err:
        raise UserError(f"cannot read {path} as a MATLAB file: {err}") from None
    if key not in data:
        raise UserError(f"{path} has no variable {key!r}")
    return data[key]


class SIDDValidationBlocks:
    """The 1280 SIDD validation blocks (or the first ``limit``), as ``(noisy, clean)`` items.

    Items are float32 CxHxW arrays in [0, 1]; block ``i`` is image ``i // 32``,
    block ``i % 32``.

    Args:
        noisy_mat (str): path of ``ValidationNoisyBlocksSrgb.mat``.
        gt_mat (str): path of ``ValidationGtBlocksSrgb.mat``.
        limit (int or None): use only the first ``limit`` blocks (quick checks).
    """

    def __init__(self, noisy_mat, gt_mat, limit=None):
        for path in (noisy_mat, gt_mat):
            if not os.path.isfile(path):
                raise UserError(f"SIDD validation file not found: {path} ({SIDD_HINT})")
        self.noisy = self._blocks(noisy_mat, "ValidationNoisyBlocksSrgb")
        self.clean = self._blocks(gt_mat, "ValidationGtBlocksSrgb")
        if self.noisy.shape != self.clean.shape:
            raise UserError(f"{noisy_mat} holds {self.noisy.shape[:-1]} blocks but {gt_mat} "
                            f"holds {self.clean.shape[:-1]}")
        n = self.noisy.shape[0]
        self.size = n if limit is None else min(limit, n)
        self.names = [f"{i // self.blocks_per_image:02d}_{i % self.blocks_per_image:02d}"
                      for i in range(self.size)]

    def _blocks(self, path, key):
        arr = load_mat_array(path, key)
        if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise UserError(f"{path}: expected uint8 blocks of shape images x blocks x H x W x 3, "
                            f"got {arr.dtype} {arr.shape}")
        self.blocks_per_image = arr.shape[1]
        return arr.reshape((-1,) + arr.shape[2:])

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        i = int(index[0] if isinstance(index, (tuple, list)) else index)
        noisy = self.noisy[i].astype(np.float32) / 255.0
        clean = self.clean[i].astype(np.float32) / 255.0
        return to_chw(noisy), to_chw(clean)


def find_sidd_medium_pairs(src):
    """``[(noisy PNG, clean PNG), ...]`` of a SIDD-Medium sRGB folder, sorted.

    ``src`` is the folder of scene folders (``SIDD_Medium_Srgb/Data``); each
    ``*_NOISY_SRGB_*.PNG`` pairs with the ``*_GT_SRGB_*.PNG`` of the same name
    otherwise. A noisy image without its ground truth is an error naming it.
    """
    if not os.path.isdir(src):
        raise UserError(f"SIDD-Medium folder not found: {src} (expected SIDD_Medium_Srgb/Data "
                        f"with one folder per scene; see data/README.md)")
    pairs = []
    for scene in sorted(os.listdir(src)):
        folder = os.path.join(src, scene)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if "_NOISY_SRGB_" not in name or not name.lower().endswith(".png"):
                continue
            gt = os.path.join(folder, name.replace("_NOISY_SRGB_", "_GT_SRGB_"))
            if not os.path.isfile(gt):
                raise UserError(f"{os.path.join(folder, name)} has no ground truth {gt}")
            pairs.append((os.path.join(folder, name), gt))
    if not pairs:
        raise UserError(f"no *_NOISY_SRGB_*.PNG images in the scene folders of {src}")
    return pairs


def prepare_sidd_patches(src, out, patch_size=256, num_patches=300, seed=0, workers=1,
                         progress=None):
    """Cut ``num_patches`` random ``patch_size`` patch pairs from each SIDD-Medium pair.

    :func:`ppmirnet.data.prepare.cut_patches` of :func:`find_sidd_medium_pairs`:
    ``out/input/NNNN_PPP.png`` and ``out/groundtruth/NNNN_PPP.png``, seeded
    whatever the number of ``workers``. Returns the number of pairs written.
    """
    from .prepare import cut_patches

    return cut_patches(find_sidd_medium_pairs(src), out, patch_size, num_patches, seed, workers,
                       progress)

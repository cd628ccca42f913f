"""DND sRGB benchmark: reading its crops and bundling results for the submission server.

DND has no public ground truth. ``images_srgb/0001.mat`` ... ``0050.mat``
(MATLAB v7.3, key ``InoisySRGB``) hold the noisy images and ``info.mat`` 20
bounding boxes per image (1-based, inclusive: rows ``b0-1 : b2``, columns
``b1-1 : b3``). The 1000 denoised crops are uploaded as
``srgb_results_for_server_submission/%04d.mat``, one file per image holding
``Idenoised`` (a cell array of its 20 float32 crops), ``israw = False`` and
``eval_version = "1.0"``.
"""

import os

import numpy as np

from ..errors import UserError
from ..utils.io import atomic_path
from .paired import to_chw

NUM_IMAGES = 50
BOXES_PER_IMAGE = 20
SUBMISSION_FOLDER = "srgb_results_for_server_submission"


def _h5py():
    import h5py

    return h5py


def read_dnd_boxes(info_path):
    """Bounding boxes of ``info.mat``: int array (images, 20, 4) of 1-based [r0, c0, r1, c1]."""
    if not os.path.isfile(info_path):
        raise UserError(f"DND info file not found: {info_path} (expected the DND benchmark's "
                        f"info.mat and images_srgb/; see data/README.md)")
    h5py = _h5py()
    try:
        with h5py.File(info_path, "r") as f:
            info = f["info"]
            refs = info["boundingboxes"]
            boxes = [np.array(info[refs[0][i]]).T for i in range(refs.shape[1])]
    except (OSError, KeyError) as err:
        raise UserError(f"cannot read DND boxes from {info_path}: {err}") from None
    return np.stack(boxes).astype(np.int64)


def read_dnd_image(path):
    """The noisy sRGB image of a DND ``images_srgb/*.mat`` file, HxWx3 float32 in [0, 1]."""
    if not os.path.isfile(path):
        raise UserError(f"DND image not found: {path}")
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            return np.array(f["InoisySRGB"], dtype=np.float32).T
    except (OSError, KeyError) as err:
        raise UserError(f"cannot read {path} as a DND image: {err}") from None


def crop_box(img, box):
    """The crop of ``img`` for a 1-based inclusive DND box [r0, c0, r1, c1]."""
    r0, c0, r1, c1 = (int(v) for v in box)
    return img[r0 - 1:r1, c0 - 1:c1]


class DNDBenchmark:
    """The 1000 DND crops as input-only items ``(noisy CxHxW float32, index)``.

    Item ``k`` is box ``k % 20`` of image ``k // 20`` (both 0-based). Images
    are read lazily, one at a time (each is about 90 MB as float32).

    Args:
        root (str): folder holding ``info.mat`` and ``images_srgb/``.
    """

    def __init__(self, root):
        self.root = root
        self.boxes = read_dnd_boxes(os.path.join(root, "info.mat"))
        self.num_images = self.boxes.shape[0]
        for i in range(self.num_images):
            path = self.image_path(i)
            if not os.path.isfile(path):
                raise UserError(f"DND image not found: {path}")
        self._current = (None, None)

    def image_path(self, i):
        """Path of image ``i`` (0-based)."""
        return os.path.join(self.root, "images_srgb", f"{i + 1:04d}.mat")

    def __len__(self):
        return self.num_images * self.boxes.shape[1]

    def __getitem__(self, index):
        k = int(index[0] if isinstance(index, (tuple, list)) else index)
        i, b = divmod(k, self.boxes.shape[1])
        if self._current[0] != i:
            self._current = (i, read_dnd_image(self.image_path(i)))
        return to_chw(crop_box(self._current[1], self.boxes[i, b])), np.int64(k)


def bundle_dnd_submission(crops, out_dir, boxes_per_image=BOXES_PER_IMAGE):
    """Write the DND server submission from denoised crops.

    Args:
        crops (dict): ``{(image, box): HxWx3 float array}`` (0-based), every box
            of every image present.
        out_dir (str): where ``srgb_results_for_server_submission/`` is made.

    Returns the submission folder. Each ``%04d.mat`` is written atomically.
    """
    import scipy.io

    images = sorted({i for i, _ in crops})
    folder = os.path.join(out_dir, SUBMISSION_FOLDER)
    os.makedirs(folder, exist_ok=True)
    for i in images:
        cell = np.empty((boxes_per_image,), dtype=object)
        for b in range(boxes_per_image):
            if (i, b) not in crops:
                raise ValueError(f"missing denoised crop {b} of DND image {i + 1}")
            cell[b] = np.ascontiguousarray(crops[(i, b)], dtype=np.float32)
        with atomic_path(os.path.join(folder, f"{i + 1:04d}.mat")) as tmp:
            with open(tmp, "wb") as f:
                scipy.io.savemat(f, {"Idenoised": cell, "israw": False, "eval_version": "1.0"})
    return folder

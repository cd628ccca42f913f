"""Paired transforms on HxWxC numpy images: random crop, flips/rotations, MixUp.

Every random choice comes from a ``numpy.random.Generator`` passed in, so a
sample is a pure function of its seed (see :mod:`ppmirnet.data.sampler`).
"""

import numpy as np


def paired_random_crop(noisy, clean, patch_size, rng):
    """Crop the same random ``patch_size`` square from both images.

    An image smaller than the patch is an error naming its size; an image of
    exactly the patch size is returned whole.
    """
    h, w = clean.shape[:2]
    if noisy.shape[:2] != (h, w):
        raise ValueError(f"noisy {noisy.shape[:2]} and clean {(h, w)} images differ in size")
    if h < patch_size or w < patch_size:
        raise ValueError(f"image of {w}x{h} is smaller than the training patch_size {patch_size}")
    top = int(rng.integers(0, h - patch_size + 1))
    left = int(rng.integers(0, w - patch_size + 1))
    sl = (slice(top, top + patch_size), slice(left, left + patch_size))
    return noisy[sl], clean[sl]


def dihedral(img, mode):
    """One of the 8 flips/rotations of a HxWxC image (``mode`` in 0..7; 0 is identity).

    Modes 0-3 rotate by ``mode * 90`` degrees, 4-7 do the same then flip
    vertically: the eight variants of the official training augmentation.
    """
    out = np.rot90(img, k=mode % 4, axes=(0, 1))
    if mode >= 4:
        out = out[::-1]
    return out


def paired_augment(noisy, clean, rng):
    """Apply the same randomly chosen one of the 8 flips/rotations to both images."""
    mode = int(rng.integers(0, 8))
    return dihedral(noisy, mode), dihedral(clean, mode)


def mixup_params(n, rng, alpha=1.2, one_lambda=False):
    """The batch MixUp of the official training (from epoch 6): ``(perm, lam)`` for ``n`` samples.

    Sample ``i`` of both the noisy batch and the target becomes
    ``lam_i * x_i + (1 - lam_i) * x_perm(i)``, ``lam_i ~ Beta(alpha, alpha)``,
    ``perm`` a random permutation of the batch. ``lam`` has shape
    (n, 1, 1, 1), float32, so it broadcasts over NCHW; with ``one_lambda``
    (BasicSR's mixing) it is one value for the whole batch, shape (1, 1, 1, 1).
    """
    perm = rng.permutation(n)
    lam = rng.beta(alpha, alpha, size=(1 if one_lambda else n, 1, 1, 1)).astype(np.float32)
    return perm, lam

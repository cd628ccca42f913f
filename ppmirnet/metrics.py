"""Image quality metrics: PSNR as the official scripts compute it, and SSIM.

Both take HxWxC (or HxW) numpy arrays and a ``data_range`` (1.0 for float
images in [0, 1], 255 for uint8).
"""

import numpy as np


def psnr(img1, img2, data_range=1.0):
    """Peak signal-to-noise ratio in dB, per image.

    As the official MIRNet ``myPSNR``: both images are clipped to
    ``[0, data_range]`` and the mean squared error is taken over all pixels
    and channels; ``20 * log10(data_range / rmse)``. Identical images give
    ``inf``.
    """
    a, b = _check_pair(img1, img2)
    a = np.clip(a, 0, data_range)
    b = np.clip(b, 0, data_range)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(20.0 * np.log10(data_range / np.sqrt(mse)))


def ssim(img1, img2, data_range=1.0):
    """Structural similarity, scikit-image's Gaussian-weighted variant.

    ``structural_similarity(channel_axis=-1, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)``: the usual Python stand-in for
    MATLAB's ``ssim`` used by the paper (values differ slightly from MATLAB).
    """
    from skimage.metrics import structural_similarity

    a, b = _check_pair(img1, img2)
    return float(
        structural_similarity(
            a, b, data_range=data_range, channel_axis=-1 if a.ndim == 3 else None,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
    )


def _check_pair(img1, img2):
    a = np.asarray(img1, dtype=np.float64)
    b = np.asarray(img2, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected HxW or HxWxC images, got shape {a.shape}")
    return a, b

"""PSNR and SSIM against scikit-image and the official PSNR definition."""

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ppmirnet.metrics import psnr, ssim


@pytest.fixture(scope="module")
def pair():
    clean = data.astronaut()[:128, :160].astype(np.float64) / 255.0
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1)
    return clean, noisy


def test_psnr_matches_skimage_on_real_image(pair):
    clean, noisy = pair
    assert psnr(noisy, clean) == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=1.0), abs=1e-10)
    assert 25.0 < psnr(noisy, clean) < 27.0


def test_psnr_uint8_range():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert psnr(a, b, data_range=255) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)


def test_psnr_clamps_like_the_official_script():
    target = np.full((4, 4, 3), 0.5)
    pred = np.full((4, 4, 3), 1.7)  # clamped to 1: error 0.5 -> 20*log10(1/0.5)
    assert psnr(pred, target) == pytest.approx(20 * np.log10(2.0))
    assert psnr(target, target) == float("inf")


def test_ssim_matches_skimage_gaussian_settings(pair):
    clean, noisy = pair
    ref = structural_similarity(clean, noisy, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    assert ssim(noisy, clean) == pytest.approx(ref, abs=1e-12)
    assert ssim(clean, clean) == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    a, b = rng.random((48, 48, 3)), rng.random((48, 48, 3))
    ref = structural_similarity(a, b, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-12) and ssim(a, b) < 0.1


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))

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


# -- task protocols, against the formulas written out here -----------------------------------
#
# The expected values below are computed from the definitions directly (no call
# into ppmirnet.metrics): MATLAB rgb2ycbcr's luma, PSNR from the mean squared
# error, and SSIM of Wang et al. 2004 as an explicit weighted sum over every
# 11x11 window that fits inside the image.

from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from ppmirnet.metrics import describe_protocol, image_metrics  # noqa: E402


def _gaussian_window():
    t = np.arange(11) - 5.0
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5 ** 2))
    return g / g.sum()


def _ssim_formula(x, y, peak):
    """Mean SSIM of two HxW planes: every valid 11x11 window, weighted statistics."""
    w = _gaussian_window()
    px, py = sliding_window_view(x, (11, 11)), sliding_window_view(y, (11, 11))
    mx = np.einsum("ijkl,kl->ij", px, w)
    my = np.einsum("ijkl,kl->ij", py, w)
    vx = np.einsum("ijkl,kl->ij", (px - mx[..., None, None]) ** 2, w)
    vy = np.einsum("ijkl,kl->ij", (py - my[..., None, None]) ** 2, w)
    cxy = np.einsum("ijkl,kl->ij", (px - mx[..., None, None]) * (py - my[..., None, None]), w)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    return np.mean((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))


def _luma(rgb01):
    return 16.0 + 65.481 * rgb01[..., 0] + 128.553 * rgb01[..., 1] + 24.966 * rgb01[..., 2]


@pytest.fixture(scope="module")
def photo_pair():
    """A real photograph (8-bit ground truth) and a blurred, noisy float restoration of it."""
    import cv2

    gt_u8 = data.chelsea()[40:136, 80:200]                     # 96x120, the cat's face
    gt = gt_u8 / 255.0
    rng = np.random.default_rng(7)
    restored = cv2.GaussianBlur(gt, (5, 5), 0.8) + rng.normal(0, 0.02, gt.shape)
    return restored, gt  # restored: floats, a little outside [0, 1] in places


@pytest.mark.parametrize("border", [2, 3, 4])
def test_super_resolution_protocol_is_y_psnr_ssim_of_the_saved_image(photo_pair, border):
    restored, gt = photo_pair
    saved = np.round(np.clip(restored, 0, 1) * 255.0)          # as written to an 8-bit PNG
    ys = _luma(saved / 255.0)[border:-border, border:-border]
    yg = _luma(gt)[border:-border, border:-border]
    mse = np.mean((ys - yg) ** 2)
    expected_psnr = 10 * np.log10(255.0 ** 2 / mse)
    expected_ssim = _ssim_formula(ys, yg, 255.0)
    got = image_metrics(restored, gt, color="y", crop_border=border, quantize=True)
    assert got["psnr"] == pytest.approx(expected_psnr, abs=1e-6)
    assert got["ssim"] == pytest.approx(expected_ssim, abs=1e-6)
    assert 25 < got["psnr"] < 40 and 0.5 < got["ssim"] < 0.99  # a plausible restoration


def test_enhancement_protocol_is_rgb_float_psnr_full_image(photo_pair):
    restored, gt = photo_pair
    r = np.clip(restored, 0, 1)
    expected_psnr = 10 * np.log10(1.0 / np.mean((r - gt) ** 2))
    expected_ssim = np.mean([_ssim_formula(r[..., c], gt[..., c], 1.0) for c in range(3)])
    got = image_metrics(restored, gt, color="rgb", crop_border=0, quantize=False)
    assert got["psnr"] == pytest.approx(expected_psnr, abs=1e-6)
    assert got["ssim"] == pytest.approx(expected_ssim, abs=1e-6)
    # The denoising default is this protocol, and the SSIM is scikit-image's Gaussian one.
    assert image_metrics(restored, gt) == got
    ref = structural_similarity(r, gt, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    assert got["ssim"] == pytest.approx(ref, abs=1e-9)


def test_quantising_rounds_the_output_only_to_8_bits(photo_pair):
    restored, gt = photo_pair
    q = image_metrics(restored, gt, names=["psnr"], quantize=True)["psnr"]
    saved = np.round(np.clip(restored, 0, 1) * 255.0) / 255.0
    assert q == pytest.approx(10 * np.log10(1.0 / np.mean((saved - gt) ** 2)), abs=1e-6)
    assert q != pytest.approx(image_metrics(restored, gt, names=["psnr"])["psnr"], abs=1e-4)


def test_rounding_y_as_matlab_moves_psnr_by_less_than_005_db(photo_pair):
    # MATLAB's rgb2ycbcr on uint8 images rounds Y; the protocol keeps it as a float.
    restored, gt = photo_pair
    saved = np.round(np.clip(restored, 0, 1) * 255.0) / 255.0
    for border in (2, 3, 4):
        ys = _luma(saved)[border:-border, border:-border]
        yg = _luma(gt)[border:-border, border:-border]
        rounded = 10 * np.log10(255.0 ** 2 / np.mean((np.round(ys) - np.round(yg)) ** 2))
        ours = image_metrics(restored, gt, names=["psnr"], color="y", crop_border=border,
                             quantize=True)["psnr"]
        assert 0 < abs(rounded - ours) < 0.05


def test_protocol_errors_and_description(photo_pair):
    restored, gt = photo_pair
    with pytest.raises(ValueError, match="crop_border 48 leaves nothing of a 96x120 image"):
        image_metrics(restored, gt, crop_border=48)
    with pytest.raises(ValueError, match="color is 'lab'"):
        image_metrics(restored, gt, color="lab")
    with pytest.raises(ValueError, match="SSIM needs images of at least 11x11"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    text = describe_protocol({"color": "y", "crop_border": 4, "quantize": True})
    assert "Y channel (MATLAB rgb2ycbcr coefficients" in text and "not rounded" in text
    assert "border crop 4" in text and "output rounded to 8 bits" in text
    assert describe_protocol({}).startswith("RGB in [0, 1], peak 1; full image; float output")

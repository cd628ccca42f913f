"""Image quality metrics and the evaluation protocols of the paper's three tasks.

:func:`psnr` and :func:`ssim` take HxWxC (or HxW) numpy arrays and a
``data_range`` (1.0 for float images in [0, 1], 255 for uint8 or Y planes).
:func:`image_metrics` applies a protocol (the config's ``Metric`` section)
before measuring:

- ``quantize``: the restored image is rounded to 8 bits first, as it is when
  saved as PNG (the ground truth is read from 8-bit files already);
- ``crop_border``: that many pixels leave every border (super-resolution
  crops ``scale`` pixels);
- ``color``: ``rgb`` measures the three channels in [0, 1]; ``y`` measures the
  luma of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio range)::

      Y = 16 + (65.481 R + 128.553 G + 24.966 B)    R, G, B in [0, 1]

  in [16, 235], with peak 255. Y is kept in floating point, as BasicSR's
  ``to_y_channel`` does; MATLAB's ``rgb2ycbcr`` of a uint8 image rounds Y to
  integers, which moves PSNR by a few hundredths of a dB at most.

Denoising and enhancement use ``rgb`` with no crop or quantisation (the
official scripts' PSNR on floats); RealSR uses ``y``, ``crop_border: scale``,
``quantize: true`` (the BasicSR ``calculate_psnr`` / ``calculate_ssim`` with
``test_y_channel=True`` definitions on saved images).
"""

import numpy as np

# MATLAB rgb2ycbcr, luma row: offset and R, G, B weights for RGB in [0, 1].
Y_OFFSET = 16.0
Y_WEIGHTS = (65.481, 128.553, 24.966)

# Wang et al. 2004: 11x11 Gaussian window of standard deviation 1.5.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03

COLORS = ("rgb", "y")
METRIC_NAMES = ("psnr", "ssim")
DEFAULT_PROTOCOL = {"color": "rgb", "crop_border": 0, "quantize": False}


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
    """Structural similarity of Wang et al. 2004, mean over the channels.

    Local means, variances and covariance are weighted by an 11x11 Gaussian
    (sigma 1.5, normalised), population statistics, ``C1 = (0.01 L)^2``,
    ``C2 = (0.03 L)^2`` with ``L = data_range``; the SSIM map is averaged over
    the valid region only (windows that fit inside the image). This is
    MATLAB's reference ``ssim_index`` as BasicSR's ``calculate_ssim``
    computes it, and equals scikit-image's ``structural_similarity(
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, whose
    border crop discards the same pixels.
    """
    a, b = _check_pair(img1, img2)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
                         f"got {a.shape[0]}x{a.shape[1]}")
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    values = []
    for ch in range(a.shape[2]):
        x, y = a[:, :, ch], b[:, :, ch]
        mx, my = _gaussian_valid(x), _gaussian_valid(y)
        vx = _gaussian_valid(x * x) - mx * mx
        vy = _gaussian_valid(y * y) - my * my
        cxy = _gaussian_valid(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s.mean())
    return float(np.mean(values))


def _gaussian_valid(x):
    """``x`` filtered by the SSIM window, only where the whole window fits."""
    radius = SSIM_WINDOW // 2
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-offsets * offsets / (2 * SSIM_SIGMA ** 2))
    weights /= weights.sum()
    h, w = x.shape
    rows = sum(weights[k] * x[k:h - 2 * radius + k] for k in range(SSIM_WINDOW))
    return sum(weights[k] * rows[:, k:w - 2 * radius + k] for k in range(SSIM_WINDOW))


def rgb_to_y(rgb):
    """Luma of MATLAB's ``rgb2ycbcr`` for RGB in [0, 1]: an HxW float plane in [16, 235]."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
    return Y_OFFSET + rgb @ np.asarray(Y_WEIGHTS)


def quantize_u8(img):
    """A float image in [0, 1] as it is once saved as 8-bit PNG (still a float in [0, 1])."""
    return np.rint(np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0) * 255.0) / 255.0


def crop_edges(img, border):
    """``img`` without ``border`` pixels on each of its four sides."""
    if border == 0:
        return img
    h, w = img.shape[:2]
    if 2 * border >= min(h, w):
        raise ValueError(f"crop_border {border} leaves nothing of a {h}x{w} image")
    return img[border:h - border, border:w - border]


def image_metrics(restored, clean, names=METRIC_NAMES, color="rgb", crop_border=0,
                  quantize=False):
    """The metrics ``names`` of one restored HxWx3 image against its clean version.

    Both are float RGB in [0, 1]; the protocol keys are those of the config's
    ``Metric`` section (see the module doc). Returns ``{name: value}``.
    """
    if color not in COLORS:
        raise ValueError(f"color is {color!r}, expected one of: {', '.join(COLORS)}")
    a = np.clip(np.asarray(restored, dtype=np.float64), 0.0, 1.0)
    b = np.clip(np.asarray(clean, dtype=np.float64), 0.0, 1.0)
    _check_pair(a, b)
    if quantize:
        a, b = quantize_u8(a), quantize_u8(b)
    a, b = crop_edges(a, crop_border), crop_edges(b, crop_border)
    data_range = 1.0
    if color == "y":
        a, b, data_range = rgb_to_y(a), rgb_to_y(b), 255.0
    out = {}
    if "psnr" in names:
        out["psnr"] = psnr(a, b, data_range)
    if "ssim" in names:
        out["ssim"] = ssim(a, b, data_range)
    return out


def protocol_of(metric_cfg):
    """The protocol keys (``color``, ``crop_border``, ``quantize``) of a ``Metric`` section."""
    metric_cfg = metric_cfg or {}
    return {k: metric_cfg.get(k, v) for k, v in DEFAULT_PROTOCOL.items()}


def describe_protocol(metric_cfg):
    """One line saying how the numbers were measured, for logs and reports."""
    p = protocol_of(metric_cfg)
    if p["color"] == "y":
        what = ("Y channel (MATLAB rgb2ycbcr coefficients, Y in [16, 235] kept as float as in "
                "BasicSR, not rounded to uint8 as MATLAB does), peak 255")
    else:
        what = "RGB in [0, 1], peak 1"
    parts = [what, f"border crop {p['crop_border']}" if p["crop_border"] else "full image",
             "output rounded to 8 bits" if p["quantize"] else "float output",
             "SSIM: Wang et al. 2004, 11x11 Gaussian sigma 1.5, valid region, channel mean"]
    return "; ".join(parts)


def _check_pair(img1, img2):
    a = np.asarray(img1, dtype=np.float64)
    b = np.asarray(img2, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected HxW or HxWxC images, got shape {a.shape}")
    return a, b

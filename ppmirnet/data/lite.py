"""Small, realistic sets for the paper's three tasks, made locally from scikit-image's photographs.

Nothing is downloaded: the clean images are photographs that ship inside the
scikit-image package. Noise follows the Poisson-Gaussian model of camera
sensors (Foi et al., 2008) in its usual heteroscedastic Gaussian form, added
in linear light and brought back to sRGB like a camera pipeline would:

    lin   = srgb_to_linear(clean)
    var_c = lin_c / peak + read_std ** 2           (shot + read noise)
    noisy = linear_to_srgb(lin + sqrt(var) * z),   z ~ N(0, C)

where ``C`` correlates the three channels by ``rho`` (as demosaicing and the
colour matrix do). ``peak``, ``read_std`` and ``rho`` are drawn per pair.
Both images are stored as 8-bit PNG, like SIDD.

The other tasks degrade the same clean crops (``task``):

- ``sr`` (RealSR-like, input at the output size): area-average down by
  ``scale`` (an anti-aliasing box filter, as a camera at a shorter focal
  length integrates light), bicubic up back to the crop size, then mild
  sensor noise (the model above at a high ``peak``);
- ``lowlight`` (LOL-like): in linear light ``dark = (exposure * lin) ** gamma``
  with a random ``exposure`` and ``gamma`` (an under-exposed shot and a
  darker tone curve), then shot/read noise at a low photon count, back to
  sRGB and quantised to 8 bits.

Layout written by :func:`make_lite_data` (the one :class:`PairedImageFolder` reads)::

    <out>/train/input/*.png   <out>/train/groundtruth/*.png
    <out>/val/input/*.png     <out>/val/groundtruth/*.png
    <out>/lite.json           (task, sources, degradation parameters, input PSNR)
"""

import json
import os
import shutil
import tempfile

import cv2
import numpy as np

from ..errors import MissingDependencyError, UserError

DEFAULT_SEED = 2020

# (scikit-image loader, (top, left) of the crop after 2x downscaling, crop size).
TRAIN_SOURCES = [
    ("astronaut", (0, 32), 192),
    ("rocket", (16, 64), 192),
    ("stereo_motorcycle", (40, 90), 192),
    ("immunohistochemistry", (40, 40), 192),
    ("retina", (256, 256), 192),
    ("camera", (24, 40), 192),
]
VAL_SOURCES = [
    ("coffee", (36, 20), 128),
    ("coffee", (36, 150), 128),
    ("chelsea", (10, 40), 128),
    ("chelsea", (10, 96), 128),
]
TRAIN_REALISATIONS = 2

PEAK_RANGE = (40.0, 160.0)       # photo-electrons at full scale: lower is noisier
READ_STD_RANGE = (0.004, 0.015)  # read noise, in linear units
RHO_RANGE = (0.0, 0.4)           # correlation between the channels' noise

TASKS = ("denoise", "sr", "lowlight")
SR_SCALES = (2, 4)                # divide the 192 and 128 pixel crops
SR_PEAK_RANGE = (3000.0, 10000.0) # mild noise: a well-lit sensor at base ISO
SR_READ_STD_RANGE = (0.0005, 0.0015)
LOW_EXPOSURE_RANGE = (0.06, 0.2)  # fraction of the proper exposure (log-uniform)
LOW_GAMMA_RANGE = (1.0, 1.3)      # > 1 darkens the shadows further
LOW_PEAK_RANGE = (300.0, 1000.0)  # photo-electrons at full scale before darkening
LOW_READ_STD_RANGE = (0.0005, 0.002)


def srgb_to_linear(x):
    """The sRGB transfer function inverted (x in [0, 1])."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x):
    """The sRGB transfer function (x in [0, 1])."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def add_camera_noise(clean, rng, peak, read_std, rho):
    """Noisy version of a clean sRGB float image (HxWx3 in [0, 1]); see the module doc."""
    lin = srgb_to_linear(clean.astype(np.float64))
    std = np.sqrt(lin / peak + read_std ** 2)
    z = rng.standard_normal(clean.shape)
    shared = rng.standard_normal(clean.shape[:2] + (1,))
    z = np.sqrt(1.0 - rho) * z + np.sqrt(rho) * shared
    return linear_to_srgb(lin + std * z)


DESCRIPTIONS = {
    "denoise": "heteroscedastic Poisson-Gaussian in linear light, channel-correlated",
    "sr": "area downscale by scale, bicubic upscale back, mild Poisson-Gaussian noise",
    "lowlight": "linear-light exposure and gamma darkening, Poisson-Gaussian noise, 8 bits",
}


def _log_uniform(rng, bounds):
    return float(np.exp(rng.uniform(*np.log(bounds))))


def degrade_noise(clean, rng):
    """The denoising input of a clean sRGB float image, and its parameters."""
    p = {"peak": _log_uniform(rng, PEAK_RANGE), "read_std": float(rng.uniform(*READ_STD_RANGE)),
         "rho": float(rng.uniform(*RHO_RANGE))}
    return add_camera_noise(clean, rng, p["peak"], p["read_std"], p["rho"]), p


def degrade_sr(clean, rng, scale):
    """The RealSR-like input (same size) of a clean sRGB float image, and its parameters."""
    h, w = clean.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"a {h}x{w} crop does not divide by scale {scale}")
    small = cv2.resize(clean, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    up = np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    p = {"scale": scale, "peak": _log_uniform(rng, SR_PEAK_RANGE),
         "read_std": float(rng.uniform(*SR_READ_STD_RANGE))}
    return add_camera_noise(up, rng, p["peak"], p["read_std"], 0.0), p


def degrade_lowlight(clean, rng):
    """The low-light input of a clean sRGB float image, and its parameters."""
    p = {"exposure": _log_uniform(rng, LOW_EXPOSURE_RANGE),
         "gamma": float(rng.uniform(*LOW_GAMMA_RANGE)),
         "peak": _log_uniform(rng, LOW_PEAK_RANGE),
         "read_std": float(rng.uniform(*LOW_READ_STD_RANGE))}
    dark = (p["exposure"] * srgb_to_linear(clean.astype(np.float64))) ** p["gamma"]
    std = np.sqrt(dark / p["peak"] + p["read_std"] ** 2)
    return linear_to_srgb(dark + std * rng.standard_normal(clean.shape)), p


def _degradation(task, scale):
    if task == "denoise":
        return degrade_noise
    if task == "sr":
        if scale not in SR_SCALES:
            raise UserError(f"the lite super-resolution set has scales {SR_SCALES}, not {scale}")
        return lambda clean, rng: degrade_sr(clean, rng, scale)
    if task == "lowlight":
        return degrade_lowlight
    raise UserError(f"unknown lite task {task!r}; expected one of: {', '.join(TASKS)}")


def _load_sample(name):
    try:
        import skimage.data
    except ImportError:
        raise MissingDependencyError("the lite data needs scikit-image (pip install scikit-image)") from None
    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img[:, :, :3]


def _clean_crop(name, corner, size):
    # Halving the resolution averages away the JPEG artefacts and sensor
    # noise some samples carry, so the clean images are clean.
    img = _load_sample(name)
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    top, left = corner
    crop = small[top:top + size, left:left + size]
    if crop.shape[:2] != (size, size):
        raise RuntimeError(f"lite source {name} is too small for a {size} crop at {corner}")
    return crop


def _to_u8(x):
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _write_png(path, rgb_u8):
    if not cv2.imwrite(path, rgb_u8[:, :, ::-1]):
        raise UserError(f"cannot write {path}")


def _psnr_u8(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def _make_split(folder, sources, realisations, rng, degrade):
    os.makedirs(os.path.join(folder, "input"))
    os.makedirs(os.path.join(folder, "groundtruth"))
    records = []
    for i, (name, corner, size) in enumerate(sources):
        clean = _clean_crop(name, corner, size)
        for r in range(realisations):
            degraded, params = degrade(clean / 255.0, rng)
            degraded = _to_u8(degraded)
            stem = f"{i:02d}_{name}_{r}"
            _write_png(os.path.join(folder, "input", stem + ".png"), degraded)
            _write_png(os.path.join(folder, "groundtruth", stem + ".png"), clean)
            record = {"file": stem + ".png", "source": f"skimage.data.{name}"}
            record.update({k: round(v, 5) if isinstance(v, float) else v
                           for k, v in params.items()})
            record["input_psnr"] = round(_psnr_u8(degraded, clean), 3)
            records.append(record)
    return records


def make_lite_data(out, seed=DEFAULT_SEED, overwrite=False, task="denoise", scale=4):
    """Generate the lite set of ``task`` under ``out`` (see the module doc); returns its summary.

    ``scale``: the super-resolution factor (``task="sr"``).

    The set is built in a temporary folder beside ``out`` and renamed into
    place, so ``out`` is complete or absent, also when two processes race.
    An existing ``out`` is a :class:`UserError`, except an empty folder; with
    ``overwrite`` a set this function made there is replaced (never anything
    else: it may be the user's data).
    """
    out = os.path.abspath(out)
    if os.path.isdir(out) and not os.listdir(out):
        os.rmdir(out)  # an empty folder made for it
    if os.path.exists(out):
        found = generated_set(out)
        if found is None:
            # Only a set made here is ever deleted: anything else may be the user's data.
            raise UserError(f"{out} already exists and is no lite set made by this project (no "
                            f"lite.json of its own): it is left as it is; give another folder")
        if not overwrite:
            raise UserError(f"{out} already holds the lite {set_name(*found)} set; give another "
                            f"folder, or pass overwrite to replace that set")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".lite-")
    try:
        degrade = _degradation(task, scale)
        rng = np.random.default_rng(seed)
        summary = {"task": task, "seed": seed, "degradation": DESCRIPTIONS[task]}
        if task == "sr":
            summary["scale"] = scale
        summary["train"] = _make_split(os.path.join(tmp, "train"), TRAIN_SOURCES,
                                       TRAIN_REALISATIONS, rng, degrade)
        summary["val"] = _make_split(os.path.join(tmp, "val"), VAL_SOURCES, 1, rng, degrade)
        for split in ("train", "val"):
            psnrs = [r["input_psnr"] for r in summary[split]]
            summary[f"{split}_input_psnr_mean"] = round(float(np.mean(psnrs)), 3)
        with open(os.path.join(tmp, "lite.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
        if overwrite and os.path.exists(out):
            shutil.rmtree(out)
        try:
            os.rename(tmp, out)
        except OSError:
            if not os.path.isdir(os.path.join(out, "val")):
                raise
            # Another process finished the same (seeded, identical) set first.
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return summary


def set_name(task, scale=None):
    """``denoise``, ``sr x4``, ``lowlight``: a lite set as messages name it."""
    return task + (f" x{scale}" if task == "sr" else "")


# The folders the lite configs generate their sets in (beside each other under data/).
DEFAULT_FOLDERS = {"denoise": "lite", "sr": "lite_sr_x{scale}", "lowlight": "lite_lol"}
# The config that trains on each set as generated by default.
CONFIGS = {("denoise", None): "configs/mirnet_lite.yaml", ("sr", 4): "configs/mirnet_lite_sr.yaml",
           ("lowlight", None): "configs/mirnet_lite_lol.yaml"}


def generated_set(root):
    """``(task, scale or None)`` of the lite set :func:`make_lite_data` wrote in ``root``, or None.

    None for anything else (no ``lite.json``, or not one written here): a
    folder that may hold the user's own data.
    """
    try:
        with open(os.path.join(root, "lite.json"), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    if not (isinstance(summary, dict) and {"degradation", "train", "val"} <= summary.keys()):
        return None
    # Sets written before the task key existed are denoising sets.
    task = summary.get("task", "denoise")
    return task, int(summary.get("scale", 4)) if task == "sr" else None


def is_paired_folder(root):
    """Whether ``root`` holds ``input/`` and ``groundtruth/`` (a :class:`PairedImageFolder`)."""
    return all(os.path.isdir(os.path.join(root, d)) for d in ("input", "groundtruth"))


def is_lite_set(root):
    """Whether ``root`` holds the lite layout: ``train/`` and ``val/``, each with ``input/`` and ``groundtruth/``."""
    return all(os.path.isdir(os.path.join(root, s, d)) for s in ("train", "val")
               for d in ("input", "groundtruth"))


def ensure_lite_data(root, seed=DEFAULT_SEED, log=print, task="denoise", scale=4):
    """Generate the lite set of ``task`` under ``root`` unless both splits are already there.

    An existing set made for another task or scale is a :class:`UserError`.
    Data already in ``root`` is never touched: a folder that is neither the
    lite set nor empty is a :class:`UserError` saying what was expected.
    """
    if is_lite_set(root):
        _check_task(root, task, scale)
        return False
    if os.path.exists(root) and (not os.path.isdir(root) or os.listdir(root)):
        raise UserError(f"{root} is neither a paired folder (input/ and groundtruth/) nor the "
                        f"lite set (train/ and val/, each with input/ and groundtruth/); give "
                        f"dataset.root a folder of one of these layouts, or a new folder to "
                        f"generate the lite set in")
    if os.path.isdir(root):
        os.rmdir(root)
    what = {"denoise": "denoising", "sr": f"x{scale} super-resolution",
            "lowlight": "low-light"}.get(task, task)
    log(f"generating the lite {what} data set in {os.path.abspath(root)} (seed {seed})")
    make_lite_data(root, seed=seed, task=task, scale=scale)
    return True


def _check_task(root, task, scale):
    """Refuse a lite set generated for another task or scale, pointing to where its own goes.

    The set is left alone: the way out is another folder (generated there)
    or the config of the set found.
    """
    found = generated_set(root)
    wanted = (task, scale if task == "sr" else None)
    if found is None or found == wanted:
        return  # the set asked for, or a hand-made set in the lite layout
    root = os.path.abspath(root)
    elsewhere = os.path.join(os.path.dirname(root), DEFAULT_FOLDERS[task].format(scale=scale))
    if elsewhere == root:
        elsewhere = f"{root}_{set_name(*wanted).replace(' ', '_')}"
    message = (f"{root} holds the lite {set_name(*found)} set (its lite.json says so), not the "
               f"lite {set_name(*wanted)} set this dataset needs; set dataset.root to another "
               f"folder, e.g. {elsewhere} (the {set_name(*wanted)} set is generated there)")
    if found in CONFIGS:
        message += f", or train on {root} with {CONFIGS[found]}"
    raise UserError(message)

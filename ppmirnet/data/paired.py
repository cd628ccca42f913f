"""Datasets of noisy/clean image pairs stored as files in two folders."""

import os

import numpy as np

from ..errors import UserError
from ..processing import IMAGE_EXTENSIONS, image_header, read_image
from .lite import DEFAULT_SEED, ensure_lite_data, is_lite_set, is_paired_folder
from .transforms import paired_augment, paired_random_crop


def _stems(folder):
    files = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        if stem in files:
            raise UserError(f"{folder}: two images named {stem} ({files[stem]} and {name})")
        files[stem] = name
    return files


def find_pairs(root, input_dir="input", target_dir="groundtruth"):
    """``[(input path, groundtruth path), ...]`` of ``root/input`` and ``root/groundtruth``.

    ``input_dir`` and ``target_dir`` name the two folders when they are
    called otherwise (MIRNet-v2's official layout: ``input_crops`` and
    ``target_crops``).

    Files pair by name without extension (``a.png`` with ``a.png`` or
    ``a.jpg``). A file without its partner, a missing folder or an empty one
    is a :class:`UserError` naming it.
    """
    return find_pairs_in(os.path.join(root, input_dir), os.path.join(root, target_dir),
                         hint=f"expected {root}/{input_dir} and {root}/{target_dir} holding "
                              f"degraded/clean pairs with the same names; SIDD training "
                              f"patches are made by tools/prepare_sidd.py, the other "
                              f"datasets' by tools/prepare_data.py; see data/README.md")


def find_pairs_in(input_folder, gt_folder, hint=None):
    """:func:`find_pairs` of two folders given separately (a raw download's ``low/`` + ``high/``)."""
    folders = [input_folder, gt_folder]
    for folder in folders:
        if not os.path.isdir(folder):
            raise UserError(f"dataset folder not found: {folder}"
                            + (f" ({hint})" if hint else " (see data/README.md)"))
    noisy, clean = _stems(folders[0]), _stems(folders[1])
    for stem, name in noisy.items():
        if stem not in clean:
            raise UserError(f"{os.path.join(folders[0], name)} has no ground truth in {folders[1]}")
    for stem, name in clean.items():
        if stem not in noisy:
            raise UserError(f"{os.path.join(folders[1], name)} has no noisy input in {folders[0]}")
    if not noisy:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folders[0]}")
    return [(os.path.join(folders[0], noisy[s]), os.path.join(folders[1], clean[s]))
            for s in sorted(noisy)]


def check_pairs(pairs, patch_size=None):
    """Check from the file headers that every pair matches in size and colour and holds a patch.

    Reads headers only, so a whole training set is checked in seconds before
    a model is built; a bad pair is a :class:`UserError` naming both files
    and their sizes (or their channels: a grayscale input with a colour
    ground truth, or the reverse, would train on a colour it never saw).
    """
    for noisy_path, clean_path in pairs:
        nw, nh, nc = image_header(noisy_path)
        cw, ch, cc = image_header(clean_path)
        if (nw, nh) != (cw, ch):
            raise UserError(f"{noisy_path} is {nw}x{nh} but {clean_path} is {cw}x{ch}")
        if nc != cc:
            raise UserError(f"{noisy_path} is {_COLOUR[nc]} but {clean_path} is {_COLOUR[cc]}: "
                            f"the images of a pair must have the same channels")
        if patch_size and min(nw, nh) < patch_size:
            raise UserError(f"{noisy_path} is {nw}x{nh}, smaller than the training patch_size "
                            f"{patch_size}")


_COLOUR = {1: "grayscale (1 channel)", 3: "colour (3 channels)"}


def to_chw(img):
    """HxWxC float32 image -> contiguous CxHxW float32 array."""
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


class PairedImageFolder:
    """Noisy/clean pairs from ``root/input`` and ``root/groundtruth``, matched by name.

    An item is ``(noisy, clean)``, float32 CxHxW arrays in [0, 1]. For
    training, items are fetched with a key ``(index, seed)`` (see
    :class:`ppmirnet.data.sampler.SeededBatchSampler`) and the random crop
    and flip/rotation are drawn from that seed; a plain integer index gives
    the whole, untouched pair (evaluation).

    Args:
        root (str): folder holding ``input/`` and ``groundtruth/``.
        patch_size (int or None): training crop size; None keeps whole images.
        augment (bool): apply one of the 8 flips/rotations per sample.
        repeat (int): how many times each pair appears in one epoch (many
            random crops of a few large images).
        cache (bool): keep decoded images in memory (small sets only).
        input_dir, target_dir (str): the two folders' names under ``root``.
    """

    def __init__(self, root, patch_size=None, augment=False, repeat=1, cache=False,
                 input_dir="input", target_dir="groundtruth"):
        self.root = root
        self.pairs = find_pairs(root, input_dir, target_dir)
        check_pairs(self.pairs, patch_size)
        self.names = [os.path.basename(n) for n, _ in self.pairs]
        self.patch_size = patch_size
        self.augment = augment
        self.repeat = repeat
        self._cache = {} if cache else None

    def __len__(self):
        return len(self.pairs) * self.repeat

    def _load(self, i):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        noisy_path, clean_path = self.pairs[i]
        noisy, noisy_info = read_image(noisy_path)
        clean, clean_info = read_image(clean_path)
        if (noisy_info.channels == 1) != (clean_info.channels == 1):
            raise UserError(f"{noisy_path} has {noisy_info.channels} channel(s) but {clean_path} "
                            f"has {clean_info.channels}: the images of a pair must have the same "
                            f"channels")
        if noisy.shape != clean.shape:
            raise UserError(f"{noisy_path} is {noisy.shape[1]}x{noisy.shape[0]} but "
                            f"{clean_path} is {clean.shape[1]}x{clean.shape[0]}")
        if self._cache is not None:
            self._cache[i] = (noisy, clean)
        return noisy, clean

    def __getitem__(self, key):
        if isinstance(key, (tuple, list)):
            index, seed = key
        else:
            index, seed = key, None
        i = int(index) % len(self.pairs)
        noisy, clean = self._load(i)
        if seed is not None:
            rng = np.random.default_rng(seed)
            if self.patch_size:
                try:
                    noisy, clean = paired_random_crop(noisy, clean, self.patch_size, rng)
                except ValueError as err:
                    raise UserError(f"{self.pairs[i][0]}: {err}") from None
            if self.augment:
                noisy, clean = paired_augment(noisy, clean, rng)
        return to_chw(noisy), to_chw(clean)


# Where a lite config may generate its set by itself: the repository's data/ folder.
LITE_DATA_HOME = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "data")


def _check_generation_allowed(root, task, scale):
    """Refuse to generate a lite set in a missing or empty dataset root outside ``data/``.

    A root named in a config is where the user's data should be: a missing
    or empty one is a mistake to report, not a place to fill.
    """
    if is_lite_set(root) or (os.path.exists(root) and not os.path.isdir(root)):
        return  # a set to use, or a file: ensure_lite_data says what is wrong
    if os.path.isdir(root) and os.listdir(root):
        return  # ensure_lite_data says what the folder should hold
    home = os.path.realpath(LITE_DATA_HOME)
    if os.path.commonpath([os.path.realpath(root), home]) == home:
        return
    state = "is empty" if os.path.isdir(root) else "not found"
    make = f"python tools/make_lite_data.py --out {root} --task {task}" + (
        f" --scale {scale}" if task == "sr" else "")
    raise UserError(f"dataset root {root} {state}: the lite set is generated by itself only "
                    f"under {LITE_DATA_HOME}; give dataset.root a folder holding data, or make "
                    f"the lite set there first: {make}")


class LitePairs(PairedImageFolder):
    """:class:`PairedImageFolder` over ``root/<split>`` of the lite set, generated if absent.

    A ``root`` that is itself a paired folder (``input/`` + ``groundtruth/``)
    is used as it is, so a lite config trains on the user's own pairs.

    Args:
        root (str): the lite set's folder (``data/lite``).
        split (str): ``train`` or ``val``.
        task (str): ``denoise``, ``sr`` or ``lowlight`` (see :mod:`ppmirnet.data.lite`).
        scale (int): the super-resolution factor of ``task="sr"``.
        Other arguments as :class:`PairedImageFolder`.
    """

    def __init__(self, root, split, patch_size=None, augment=False, repeat=1, cache=False,
                 log=print, task="denoise", scale=4):
        if is_paired_folder(root):
            # The user's own pairs given to a lite config (README: any paired folder works).
            log(f"{root} holds input/ and groundtruth/: using its pairs ({split} split ignored)")
            folder = root
        else:
            _check_generation_allowed(root, task, scale)
            ensure_lite_data(root, seed=DEFAULT_SEED, log=log, task=task, scale=scale)
            folder = os.path.join(root, split)
        super().__init__(folder, patch_size, augment, repeat, cache)


class DualPixelFolder(PairedImageFolder):
    """DPDD dual-pixel defocus deblurring: left and right views stacked as 6 channels.

    ``root/<left_dir>``, ``root/<right_dir>`` and ``root/<target_dir>`` hold
    16-bit PNGs with the same names. An item is ``(views, target)``: float32
    6xHxW (left RGB then right RGB) and 3xHxW in [0, 1], read at full 16-bit
    precision (divided by 65535). Crops and flips/rotations apply to the
    three images alike.

    Args:
        root (str): the split's folder.
        left_dir, right_dir, target_dir (str): the three folders' names.
        Other arguments as :class:`PairedImageFolder`.
    """

    def __init__(self, root, patch_size=None, augment=False, repeat=1, cache=False,
                 left_dir="inputL", right_dir="inputR", target_dir="target"):
        # Every view has a target of its name and back, so both lists cover the same targets.
        pairs = find_pairs(root, left_dir, target_dir)
        right_of = {target: right for right, target in find_pairs(root, right_dir, target_dir)}
        self.root = root
        self.pairs = pairs  # (left, target)
        self.rights = [right_of[t] for _, t in pairs]
        self.names = [os.path.basename(n) for n, _ in pairs]
        self.patch_size = patch_size
        self.augment = augment
        self.repeat = repeat
        self._cache = {} if cache else None

    def _load(self, i):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        left_path, target_path = self.pairs[i]
        left, _ = read_image(left_path)
        right, _ = read_image(self.rights[i])
        target, _ = read_image(target_path)
        for path, img in ((self.rights[i], right), (target_path, target)):
            if img.shape != left.shape:
                raise UserError(f"{left_path} is {left.shape[1]}x{left.shape[0]} but {path} "
                                f"is {img.shape[1]}x{img.shape[0]}")
        pair = (np.concatenate([left, right], axis=2), target)
        if self._cache is not None:
            self._cache[i] = pair
        return pair


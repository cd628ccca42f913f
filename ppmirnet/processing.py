"""Image pre/post processing and tiled inference, shared by every front end.

Keep it to Python 3.8 and numpy/OpenCV (no Paddle import): the Paddle Serving
op runs it under Python 3.8/3.9 with Paddle 2.6, the ONNX path without Paddle.

``tools/predict.py`` (dygraph), ``deploy/inference`` (Paddle Inference),
``deploy/onnx`` and the serving op all go through these functions, so an
image is read, batched, tiled, clipped and written the same way
everywhere. A *runner* is any callable mapping a float32 NCHW batch in [0, 1]
(3 channels, or 6 for MIRNet-v2's dual-pixel pairs) to the restored
N x 3 x H x W batch.
"""

import os

import cv2
import numpy as np

from .errors import UserError
from .utils.io import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageInfo:
    """How an image was stored, so its restored version is written the same way.

    Attributes:
        bit_depth (int): 8 or 16.
        channels (int): 1 (grayscale), 3 (colour) or 4 (colour + alpha).
        alpha (ndarray or None): the untouched alpha plane of an RGBA image.
        height, width (int): size of the image.
    """

    def __init__(self, bit_depth, channels, alpha, height, width):
        self.bit_depth = bit_depth
        self.channels = channels
        self.alpha = alpha
        self.height = height
        self.width = width

    @property
    def max_value(self):
        return 65535.0 if self.bit_depth == 16 else 255.0


def _from_decoded(raw, name):
    if raw is None:
        raise UserError(f"cannot read {name} as an image")
    if raw.dtype == np.uint8:
        depth = 8
    elif raw.dtype == np.uint16:
        depth = 16
    else:
        raise UserError(f"{name}: unsupported pixel type {raw.dtype} (8- or 16-bit images only)")
    if raw.ndim == 2:
        raw = raw[:, :, None]
    channels = raw.shape[2]
    alpha = None
    if channels == 1:
        rgb = np.repeat(raw, 3, axis=2)
    elif channels == 3:
        rgb = raw[:, :, ::-1]
    elif channels == 4:
        alpha = raw[:, :, 3].copy()
        rgb = raw[:, :, 2::-1]
    else:
        raise UserError(f"{name}: unsupported number of channels ({channels})")
    info = ImageInfo(depth, channels, alpha, raw.shape[0], raw.shape[1])
    if min(info.height, info.width) < 2:
        raise UserError(f"{name}: image of {info.height}x{info.width} is too small")
    # Divided in place: one float32 copy of a large photo at a time (same values as ``/``).
    out = np.ascontiguousarray(rgb, dtype=np.float32)
    out /= np.float32(info.max_value)
    return out, info


# Colour channels of an image as this module reads it (alpha aside), by Pillow mode.
_MODE_CHANNELS = {"1": 1, "L": 1, "LA": 1, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "F": 1,
                  "P": 3, "PA": 3, "RGB": 3, "RGBA": 3, "RGBX": 3, "CMYK": 3, "YCbCr": 3}


def image_header(path):
    """``(width, height, colour channels)`` the header of the image file ``path`` declares.

    Colour channels are 1 (grayscale) or 3 (colour), alpha aside. Reads only
    the header (cheap for whole datasets); a missing file or one that is not
    an image is a :class:`UserError` naming it.
    """
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise UserError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            return img.size[0], img.size[1], _MODE_CHANNELS.get(img.mode, 3)
    except Image.DecompressionBombError as err:
        # Pillow refuses to even open an image with an absurd declared size.
        raise UserError(f"{path}: the header declares an image too large to read ({err})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise UserError(f"cannot read {path} as an image ({err})") from None


def image_size(path):
    """``(width, height)`` that the header of the image file ``path`` declares (see :func:`image_header`)."""
    return image_header(path)[:2]


def read_image(path):
    """Read an image file as ``(RGB float32 HxWx3 in [0, 1], ImageInfo)``.

    8- and 16-bit, grayscale, colour and RGBA files are accepted; a missing
    or unreadable file raises :class:`UserError` naming it.
    """
    if not os.path.isfile(path):
        raise UserError(f"image not found: {path}")
    return _from_decoded(_imdecode(np.fromfile(path, dtype=np.uint8), path), path)


def decode_image(data, name="image"):
    """Decode encoded image bytes (PNG, JPEG, ...) like :func:`read_image`."""
    return _from_decoded(_imdecode(np.frombuffer(data, dtype=np.uint8), name), name)


def _imdecode(buf, name):
    if not buf.size:
        return None
    try:
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        # OpenCV refuses images whose header declares more pixels than
        # CV_IO_MAX_IMAGE_PIXELS (2**30 by default) before decoding them.
        if "CV_IO_MAX_IMAGE_PIXELS" in str(err):
            raise UserError(f"{name}: the header declares more pixels than OpenCV decodes "
                            f"(CV_IO_MAX_IMAGE_PIXELS); not restored") from None
        raise UserError(f"cannot read {name} as an image ({str(err).strip().splitlines()[-1]})") from None


def to_storage(rgb, info):
    """Turn a restored RGB float image back into the input's layout and depth.

    Values are clipped to [0, 1] and rounded; grayscale inputs get the mean
    of the three channels, RGBA inputs their original alpha. Returns an array
    in OpenCV's channel order, ready for ``cv2.imencode``.
    """
    # In place after the one copy of np.clip, so a large photo needs one float32
    # copy here, not three; the values are those of the out-of-place operations.
    scaled = np.clip(rgb, 0.0, 1.0)
    scaled *= np.float32(info.max_value) if scaled.dtype == np.float32 else info.max_value
    dtype = np.uint16 if info.bit_depth == 16 else np.uint8
    if info.channels == 1:
        return np.rint(scaled.mean(axis=2)).astype(dtype)
    bgr = np.rint(scaled, out=scaled)[:, :, ::-1].astype(dtype)
    if info.channels == 4:
        bgr = np.concatenate([bgr, info.alpha[:, :, None]], axis=2)
    return bgr


def check_finite_image(rgb, name="the restored image"):
    """Refuse a restored image holding NaN or infinite values (it would be written as black or white)."""
    if not np.all(np.isfinite(rgb)):
        raise UserError(f"{name}: the restored image holds NaN or infinite values (damaged "
                        f"weights or input?); not written")


def encode_png(rgb, info, name="the restored image"):
    """Encode a restored image as PNG bytes at the input's depth and layout (finite values only)."""
    check_finite_image(rgb, name)
    ok, buf = cv2.imencode(".png", to_storage(rgb, info))
    if not ok:
        raise UserError("PNG encoding failed")
    return buf.tobytes()


def write_image(path, rgb, info):
    """Write a restored image as PNG, atomically (never a half-written file nor a non-finite image)."""
    data = encode_png(rgb, info, path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def list_images(path):
    """The image files of ``path`` (a file, or a folder searched non-recursively), sorted."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserError(f"input not found: {path}")
    files = sorted(
        os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    return files


def list_pairs(left, right):
    """Dual-pixel inputs: ``[(left view, right view), ...]`` of two files or two folders.

    Folders are paired by file name (as DPDD's ``inputL/`` and ``inputR/``);
    a left view without its right one, or the reverse, is a
    :class:`UserError` naming it.
    """
    lefts, rights = list_images(left), list_images(right)
    if os.path.isfile(left) and os.path.isfile(right):
        return [(left, right)]
    if os.path.isfile(left) != os.path.isfile(right):
        raise UserError(f"{left} and {right}: give two image files or two folders of dual-pixel views")
    by_name = {os.path.basename(p): p for p in rights}
    missing = [p for p in lefts if os.path.basename(p) not in by_name]
    if missing:
        raise UserError(f"{missing[0]} has no right view {os.path.join(right, os.path.basename(missing[0]))}"
                        + (f" (nor have {len(missing) - 1} more)" if len(missing) > 1 else ""))
    names = {os.path.basename(p) for p in lefts}
    extra = [p for p in rights if os.path.basename(p) not in names]
    if extra:
        raise UserError(f"{extra[0]} has no left view {os.path.join(left, os.path.basename(extra[0]))}"
                        + (f" (nor have {len(extra) - 1} more)" if len(extra) > 1 else ""))
    return [(p, by_name[os.path.basename(p)]) for p in lefts]


def list_inputs(path, right=None):
    """:func:`list_images` of ``path``, or with ``right`` the dual-pixel pairs of :func:`list_pairs`."""
    return list_pairs(path, right) if right is not None else list_images(path)


def stack_views(left, right, left_name="the left view", right_name="the right view"):
    """Stack the HxWx3 left and right views of a dual-pixel pair as the HxWx6 network input."""
    if left.shape != right.shape:
        raise UserError(f"{left_name} is {left.shape[1]}x{left.shape[0]} but {right_name} is "
                        f"{right.shape[1]}x{right.shape[0]}")
    return np.concatenate([left, right], axis=2)


def read_input(item):
    """Read an image file, or a ``(left, right)`` pair stacked as HxWx6, with the first one's info.

    The restored image is written as the (left) input was stored.
    """
    if isinstance(item, (str, os.PathLike)):
        return read_image(item)
    left, right = item
    rgb_left, info = read_image(left)
    return stack_views(rgb_left, read_image(right)[0], left, f"its right view {right}"), info


def to_batch(images):
    """Stack HxWxC images of one size into a float32 NCHW batch."""
    if len(images) == 1:  # one copy instead of two (np.stack, then the transposed copy)
        return np.ascontiguousarray(images[0].transpose(2, 0, 1)[None], dtype=np.float32)
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)


def from_batch(batch):
    """Split a NCHW batch into HxWx3 images."""
    return [np.ascontiguousarray(b.transpose(1, 2, 0)) for b in batch]


# Every network reflect-pads its input to its own multiple (8 for MIRNet, 4
# for MIRNet-v2) inside its forward, in dygraph and in exported programs
# alike, so runners are called on the image as it is: an input that needs
# no padding gives exactly the official output. 8 pixels is the smallest
# size the default networks can reflect-pad (an exported MIRNet pads by up
# to 7); a larger multiple (MIRNet with height 5) says so when it runs.
MIN_SIZE = 8


def check_size(batch):
    """Raise :class:`UserError` for a NCHW batch smaller than :data:`MIN_SIZE` pixels."""
    h, w = batch.shape[2], batch.shape[3]
    if min(h, w) < MIN_SIZE:
        raise UserError(f"image of {h}x{w} is too small: the networks need at least "
                        f"{MIN_SIZE}x{MIN_SIZE} pixels")


def run_whole(runner, batch):
    """Run ``runner`` on the whole of ``batch`` (the network pads and crops back itself)."""
    check_size(batch)
    return runner(batch)


# Tiles are cut at multiples of 8, which the default networks' multiples
# divide (MIRNet 8, MIRNet-v2 4): inner tiles then need no padding inside
# the network (with a larger multiple they are padded there, per tile).
TILE_MULTIPLE = 8


def _ramp(length, overlap, at_start, at_end):
    """1-D blending weights: linear ramps over the overlaps, 1 elsewhere."""
    w = np.ones(length, dtype=np.float32)
    n = min(overlap, length)
    if n > 0:
        ramp = (np.arange(n, dtype=np.float32) + 1.0) / (n + 1.0)
        if not at_start:
            w[:n] = np.minimum(w[:n], ramp)
        if not at_end:
            w[-n:] = np.minimum(w[-n:], ramp[::-1])
    return w


def tile_layout(size, tile, overlap, multiple=TILE_MULTIPLE):
    """Place tiles along one axis: returns ``(starts, length)``.

    Uses the fewest tiles of at most ``tile`` pixels that overlap by at least
    ``overlap``, then shrinks them to the smallest length (a multiple of
    ``multiple``) that still covers the axis, with the starts spread evenly.
    Fixed-stride tiling instead pushes its last tile back inside the image
    and computes the overlap of the last two tiles twice: for a 4000x3000
    photo with tiles of 512 that is 37% more pixels through the network than
    the image has; this layout needs 15%.
    """
    if size <= tile:
        return [0], size
    count = -(-(size - overlap) // (tile - overlap))
    length = -(-(size + (count - 1) * overlap) // count)
    length = min(-(-length // multiple) * multiple, tile)
    # size > tile makes count >= 2. Integer starts with gaps of at most length - overlap (so every overlap
    # is at least ``overlap``), the last tile ending at the border.
    starts = [i * (size - length) // (count - 1) for i in range(count)]
    return starts, length


def run_tiled(runner, batch, tile, overlap=32, progress=None):
    """Restore a NCHW batch tile by tile, so memory is bounded by the tile size.

    Tiles of at most ``tile`` x ``tile`` pixels (see :func:`tile_layout`)
    overlap by at least ``overlap``; overlapping outputs are blended with
    linear ramps so no seam shows. Away from the seams the result equals the
    untiled one up to the network's receptive field effects. ``tile`` must be
    a multiple of :data:`TILE_MULTIPLE` and larger than ``overlap``; images
    smaller than a tile are run whole. ``progress``, if given, is called as
    ``progress(done, total)`` after each tile.
    """
    if tile % TILE_MULTIPLE:
        raise UserError(f"tile size {tile} must be a multiple of {TILE_MULTIPLE}")
    if overlap < 0 or overlap >= tile:
        raise UserError(f"tile_overlap must be in [0, tile), got {overlap}")
    n, _, h, w = batch.shape
    if h <= tile and w <= tile:
        return run_whole(runner, batch)
    out = None
    weight = np.zeros((1, 1, h, w), dtype=np.float32)
    ys, th = tile_layout(h, tile, overlap)
    xs, tw = tile_layout(w, tile, overlap)
    wy = {y: _ramp(th, overlap, y == 0, y + th >= h) for y in ys}
    wx = {x: _ramp(tw, overlap, x == 0, x + tw >= w) for x in xs}
    done = 0
    for y in ys:
        for x in xs:
            res = run_whole(runner, batch[:, :, y:y + th, x:x + tw])
            done += 1
            if progress:
                progress(done, len(ys) * len(xs))
            if out is None:  # the output's channels: 3, also for the 6-channel dual-pixel input
                out = np.zeros((n, res.shape[1], h, w), dtype=np.float32)
            wgt = np.outer(wy[y], wx[x])[None, None]
            out[:, :, y:y + th, x:x + tw] += res * wgt
            weight[:, :, y:y + th, x:x + tw] += wgt
    out /= weight  # in place: the output is the largest array of a tiled run
    return out


def restore(runner, image, tile=None, overlap=32):
    """Restore one HxWxC image in [0, 1] (C: 3, or 6 for a dual-pixel pair): run (tiled if ``tile``), clip."""
    batch = to_batch([image])
    if tile:
        out = run_tiled(runner, batch, tile, overlap)
    else:
        out = run_whole(runner, batch)
    out = from_batch(out)[0]
    check_finite_image(out)
    return np.clip(out, 0.0, 1.0)


class ArrayInfo:
    """How a numpy image was given, so its restored version is returned the same way.

    Attributes:
        dtype (numpy.dtype): uint8, uint16 or a float type.
        shape (tuple): the input's shape (HxW, HxWx1 or HxWx3).
    """

    def __init__(self, dtype, shape):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape)

    @property
    def max_value(self):
        """The value of white: 255, 65535, or 1.0 for floats."""
        return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(self.dtype, 1.0)


def from_array(image, name="image"):
    """A numpy image as ``(RGB float32 HxWx3 in [0, 1], ArrayInfo)``.

    ``image`` is HxWx3 (RGB), HxW or HxWx1 (grayscale), of dtype uint8,
    uint16, or float with values in [0, 1]; anything else is a
    :class:`UserError` naming ``name``.
    """
    if not isinstance(image, np.ndarray):
        raise UserError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if not (image.ndim == 2 or image.ndim == 3 and image.shape[2] in (1, 3)):
        raise UserError(f"{name}: expected an HxWx3 or HxW image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16) and not np.issubdtype(image.dtype, np.floating):
        raise UserError(f"{name}: unsupported dtype {image.dtype} (uint8, uint16 or float in [0, 1])")
    if min(image.shape[:2]) < 2:
        raise UserError(f"{name}: image of {image.shape[0]}x{image.shape[1]} is too small")
    info = ArrayInfo(image.dtype, image.shape)
    rgb = image.astype(np.float32) / np.float32(info.max_value)
    if not np.isfinite(rgb).all():
        raise UserError(f"{name}: the image holds NaN or infinite values")
    if rgb.ndim == 2:
        rgb = rgb[:, :, None]
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.ascontiguousarray(rgb), info


def to_array(rgb, info):
    """Turn a restored RGB float image back into the input's shape and dtype (see :func:`from_array`).

    Values are clipped to [0, 1]; integer types are scaled and rounded,
    grayscale inputs get the mean of the three channels.
    """
    # Scaled before the grayscale mean, as to_storage does, so an array and a
    # file restored from the same pixels get the same values.
    out = np.clip(rgb, 0.0, 1.0) * np.float32(info.max_value)
    if len(info.shape) == 2 or info.shape[2] == 1:
        out = out.mean(axis=2).reshape(info.shape)
    if np.issubdtype(info.dtype, np.integer):
        return np.rint(out).astype(info.dtype)
    return out.astype(info.dtype)

"""Reflect padding of a network's input to a multiple of its downsampling factor, inside the graph."""

import paddle
import paddle.nn.functional as F


def pad_tensor_to_multiple(x, multiple):
    """Reflect-pad the bottom and right of NCHW ``x`` to a multiple of ``multiple``.

    Returns ``(padded, (H, W))``; ``padded is x`` when no padding is needed.
    Every front end (:mod:`ppmirnet.processing`) hands images over unpadded,
    so this is the one place where a network's multiple is applied. In
    dygraph the padding is exact. In a static graph (export with dynamic H and
    W) the sizes are tensors, so the input is reflect-padded by
    ``multiple - 1`` and sliced to the rounded-up size: the first rows of a
    reflection do not depend on its length, so the result is the same.
    """
    if paddle.in_dynamic_mode():
        h, w = x.shape[2], x.shape[3]
        ph, pw = -h % multiple, -w % multiple
        if ph == 0 and pw == 0:
            return x, (h, w)
        if ph >= h or pw >= w:
            raise ValueError(
                f"input of {h}x{w} is too small to reflect-pad to a multiple of {multiple}"
            )
        return F.pad(x, [0, pw, 0, ph], mode="reflect"), (h, w)
    shape = paddle.shape(x)
    h, w = shape[2], shape[3]
    most = multiple - 1
    hp = _round_up(h, multiple)
    wp = _round_up(w, multiple)
    padded = F.pad(x, [0, most, 0, most], mode="reflect")
    return padded[:, :, :hp, :wp], (h, w)


def _round_up(size, multiple):
    """``size`` (an integer tensor of the static graph) rounded up to a multiple of ``multiple``.

    Not ``//``: Paddle 3's static ``floor_divide`` and ``remainder`` print a
    warning about an ``out`` argument nobody passed ("PIR not support input
    out tensor") on every export. The float32 quotient is exact for any image
    side below 2**24 pixels and positive, so casting it back to an integer
    (truncation) gives the integer quotient.
    """
    quotient = (size + (multiple - 1)).astype("float32") / multiple
    return quotient.astype(size.dtype) * multiple

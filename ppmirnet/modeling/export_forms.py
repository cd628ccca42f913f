"""The forms the network takes in an exported (static) program, and why.

Training and dygraph inference run the paper's operations. The exported
programs replace some of them with exactly equivalent forms, each needed by
one runtime:

=========================  ===========================================  ======================
paper operation            exported as                                  needed by
=========================  ===========================================  ======================
bilinear x2 upsampling     replicate pad by 1, fixed depthwise 4x4      Paddle Inference with
(``nn.Upsample``,          transposed conv (stride 2, padding 3)        oneDNN, and export with
``align_corners=False``)                                                dynamic H and W
sigmoid (``nn.Sigmoid``)   the raw ``sigmoid`` op when building a       legacy ``.pdmodel``
                           legacy (non-PIR) program                     (Paddle Serving, 2.6)
PReLU with one slope       the slope expanded to one per channel        Paddle Inference with
(``nn.PReLU()``)                                                        oneDNN (speed)
channel max                the ``max`` reduction                        legacy ``.pdmodel``;
(``ChannelMax``)                                                        one op in inference
LeakyReLU (``nn.           ``maximum(x, slope * x)`` in a PIR program   Paddle Inference with
LeakyReLU``, MIRNet-v2)                                                 oneDNN (PIR program)
context weighted sum       the raw ``matmul_v2`` op when building a     legacy ``.pdmodel``
(``ContextBlock``,         legacy program
MIRNet-v2)
PReLU (one slope)          ``relu(x) - a * relu(-x)``                   OpenVINO (``.pdmodel``)
SKFF branch weights        slices of the softmax instead of             OpenVINO (``.pdmodel``)
(``unbind``)               ``unbind``
=========================  ===========================================  ======================

The last two rows apply only to the program exported for OpenVINO
(``export_forms(model, runtime="openvino")``): OpenVINO's Paddle front end
has no converter for ``prelu`` nor ``unbind``.

- ``bilinear_interp`` has no oneDNN kernel in Paddle Inference and its
  dynamic-shape export needs the output size as a tensor; the transposed
  convolution with kernel ``outer(k, k)``, ``k = [1, 3, 3, 1] / 4`` on the
  replicate-padded input is the same function, to float rounding.
- Paddle 3's ``F.sigmoid`` only accepts PIR values in static mode, so
  building the legacy program (``FLAGS_enable_pir_api=0``) fails on it.
- oneDNN runs the per-channel PReLU kernel about ten times faster than the
  scalar one. The slope stays ONE parameter (the checkpoint layout), and a
  PReLU shared by layers of different widths stays shared.
- :class:`ChannelMax` is a gather at the argmax for its cheap backward in
  training; a program without backward needs only the reduction, and
  ``argmax`` does not build in a legacy program.
- Paddle Inference 3.3.1 crashes (segmentation fault in its oneDNN
  conv + activation fusion) on a convolution followed by ``leaky_relu`` in a
  PIR program; ``maximum(x, a * x)`` is LeakyReLU exactly for ``0 <= a <= 1``.
- Paddle 3's ``paddle.matmul`` only accepts PIR values in static mode, as
  ``F.sigmoid``; a legacy program gets the op appended directly.
- ``relu(x) - a * relu(-x)`` is PReLU exactly: one of the two terms is a
  zero, and ``a * (-(-x))`` is ``a * x``. Slicing the softmax along the
  branch axis gives the same tensors as ``unbind``.

:func:`export_forms` swaps these layers in for the duration of an export and
puts the originals back; parameters are shared, not copied.
"""

import contextlib

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .context import ContextBlock
from .layers import ChannelMax
from .skff import SKFF

RUNTIMES = (None, "openvino")

def _replicate_pad1(x):
    x = paddle.concat([x[:, :, :1], x, x[:, :, -1:]], axis=2)
    return paddle.concat([x[:, :, :, :1], x, x[:, :, :, -1:]], axis=3)


class BilinearUp2(nn.Layer):
    """x2 bilinear upsampling (``align_corners=False``) as a transposed convolution."""

    def __init__(self):
        super().__init__()
        k = np.array([1.0, 3.0, 3.0, 1.0]) / 4.0
        kernel = np.outer(k, k)[None, None].astype("float32")
        self.register_buffer("kernel", paddle.to_tensor(kernel), persistable=False)

    def forward(self, x):
        channels = x.shape[1]
        kernel = self.kernel.expand([channels, 1, 4, 4])
        return F.conv2d_transpose(_replicate_pad1(x), kernel, stride=2, padding=3, groups=channels)


class LegacySigmoid(nn.Layer):
    """Sigmoid that also builds in a legacy (non-PIR) static program."""

    def forward(self, x):
        if paddle.in_dynamic_mode() or paddle.framework.in_pir_mode():
            return F.sigmoid(x)
        from paddle.base.layer_helper import LayerHelper

        helper = LayerHelper("sigmoid")
        out = helper.create_variable_for_type_inference(x.dtype)
        helper.append_op(type="sigmoid", inputs={"X": x}, outputs={"Out": out})
        return out


class ChannelwisePReLU(nn.Layer):
    """A one-slope PReLU computed with the slope repeated for every channel."""

    def __init__(self, prelu):
        super().__init__()
        self.slope = prelu._weight  # shared with the original layer, not copied

    def forward(self, x):
        return F.prelu(x, self.slope.expand([x.shape[1]]))


class MaxReduce(nn.Layer):
    """The channel max as the ``max`` reduction."""

    def forward(self, x):
        return x.max(axis=1, keepdim=True)


class MaxLeakyReLU(nn.Layer):
    """LeakyReLU with slope ``a`` in [0, 1] as ``maximum(x, a * x)`` in a PIR program.

    A legacy program keeps ``leaky_relu`` (``maximum`` does not build there,
    and the legacy passes do not crash on it).
    """

    def __init__(self, slope):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        if paddle.in_dynamic_mode() or paddle.framework.in_pir_mode():
            return paddle.maximum(x, x * self.slope)
        return F.leaky_relu(x, self.slope)


def _legacy_matmul_t(x, y):
    """``x @ y^T``, also when building a legacy (non-PIR) program."""
    if paddle.in_dynamic_mode() or paddle.framework.in_pir_mode():
        return paddle.matmul(x, y, transpose_y=True)
    from paddle.base.layer_helper import LayerHelper

    helper = LayerHelper("matmul_v2")
    out = helper.create_variable_for_type_inference(x.dtype)
    helper.append_op(type="matmul_v2", inputs={"X": x, "Y": y}, outputs={"Out": out},
                     attrs={"trans_x": False, "trans_y": True})
    return out


class LegacyContextBlock(nn.Layer):
    """:class:`ContextBlock` with its weighted sum built in legacy programs too."""

    def __init__(self, block):
        super().__init__()
        self.conv_mask = block.conv_mask  # shared with the original layer, not copied
        self.channel_add_conv = block.channel_add_conv

    def forward(self, x):
        feats = x.reshape([0, 0, -1])
        mask = F.softmax(self.conv_mask(x).reshape([0, 1, -1]), axis=2)
        return x + self.channel_add_conv(_legacy_matmul_t(feats, mask).unsqueeze(-1))


class ReluPReLU(nn.Layer):
    """A one-slope PReLU as ``relu(x) - a * relu(-x)`` (OpenVINO has no ``prelu``)."""

    def __init__(self, prelu):
        super().__init__()
        self.slope = prelu._weight  # shared with the original layer, not copied

    def forward(self, x):
        return F.relu(x) - self.slope * F.relu(-x)


class SlicedSKFF(nn.Layer):
    """:class:`SKFF` with its branch weights sliced off the softmax (OpenVINO has no ``unbind``)."""

    def __init__(self, block):
        super().__init__()
        self.branches = block.branches
        self.conv_du = block.conv_du  # shared with the original layer, not copied
        self.fcs = block.fcs

    def forward(self, feats):
        summed = feats[0]
        for f in feats[1:]:
            summed = summed + f
        z = self.conv_du(F.adaptive_avg_pool2d(summed, 1))
        weights = F.softmax(paddle.stack([fc(z) for fc in self.fcs], axis=1), axis=1)
        out = feats[0] * weights[:, 0]
        for i, f in enumerate(feats[1:], 1):
            out = out + f * weights[:, i]
        return out


def _is_bilinear_x2(layer):
    return (isinstance(layer, nn.Upsample) and layer.mode == "bilinear"
            and not layer.align_corners and layer.align_mode == 0
            and layer.data_format in (None, "NCHW") and layer.size is None
            and layer.scale_factor in (2, 2.0, [2, 2], (2, 2), [2.0, 2.0], (2.0, 2.0)))


def _export_form(layer, runtime=None):
    """The replacement of ``layer`` in an exported program, or None."""
    if runtime == "openvino":
        if isinstance(layer, nn.PReLU) and layer._num_parameters == 1 and layer._data_format == "NCHW":
            return ReluPReLU(layer)
        if isinstance(layer, SKFF):
            return SlicedSKFF(layer)
    if _is_bilinear_x2(layer):
        return BilinearUp2()
    if isinstance(layer, ChannelMax):
        return MaxReduce()
    if isinstance(layer, nn.Sigmoid):
        return LegacySigmoid()
    if isinstance(layer, nn.PReLU) and layer._num_parameters == 1 and layer._data_format == "NCHW":
        return ChannelwisePReLU(layer)
    if isinstance(layer, nn.LeakyReLU) and 0.0 <= layer._negative_slope <= 1.0:
        return MaxLeakyReLU(layer._negative_slope)
    if isinstance(layer, ContextBlock):
        return LegacyContextBlock(layer)
    return None


@contextlib.contextmanager
def export_forms(model, runtime=None):
    """Within the block, ``model`` computes with its export forms (see the module doc).

    ``runtime`` None: the forms of the programs every Paddle runtime reads;
    ``"openvino"``: also those OpenVINO's Paddle front end needs.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"no export forms for runtime {runtime!r}")
    swapped = []  # (parent, name, original)
    replacements = {}  # id(original) -> its replacement: a shared layer stays shared
    for parent in model.sublayers(include_self=True):
        for name, child in list(parent._sub_layers.items()):
            if child is None:
                continue
            if id(child) not in replacements:
                replacements[id(child)] = _export_form(child, runtime)
            new = replacements[id(child)]
            if new is not None:
                parent._sub_layers[name] = new
                swapped.append((parent, name, child))
    try:
        yield model
    finally:
        for parent, name, original in reversed(swapped):
            parent._sub_layers[name] = original

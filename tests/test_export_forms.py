"""The export forms compute the paper operations they replace, and are put back."""

import numpy as np
import paddle
import paddle.nn as nn

from ppmirnet.modeling import MIRNet
from ppmirnet.modeling.export_forms import (BilinearUp2, ChannelwisePReLU, LegacySigmoid,
                                            MaxReduce, export_forms)
from ppmirnet.modeling.layers import ChannelMax


def _x(shape, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).standard_normal(shape).astype("float32"))


def test_bilinear_as_transposed_conv_equals_upsample():
    x = _x((2, 5, 7, 9))
    ref = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)(x).numpy()
    out = BilinearUp2()(x).numpy()
    assert out.shape == (2, 5, 14, 18)
    assert np.abs(out - ref).max() < 1e-5


def test_channelwise_prelu_equals_scalar_prelu_and_shares_its_slope():
    prelu = nn.PReLU(init=0.3)
    form = ChannelwisePReLU(prelu)
    assert form.slope is prelu._weight
    x = _x((2, 6, 4, 4))
    np.testing.assert_allclose(form(x).numpy(), prelu(x).numpy(), rtol=0, atol=0)


def test_max_reduce_and_legacy_sigmoid_equal_their_originals():
    x = _x((2, 6, 4, 5))
    np.testing.assert_array_equal(MaxReduce()(x).numpy(), ChannelMax()(x).numpy())
    np.testing.assert_array_equal(MaxReduce()(x).numpy(), x.numpy().max(axis=1, keepdims=True))
    np.testing.assert_allclose(LegacySigmoid()(x).numpy(), nn.Sigmoid()(x).numpy(), atol=0)


def test_channel_max_gradient_goes_to_the_maximal_channel():
    x = _x((2, 6, 4, 5), seed=1)
    x.stop_gradient = False
    (ChannelMax()(x) * 3.0).sum().backward()
    xn = x.numpy()
    expected = 3.0 * (np.arange(6)[None, :, None, None] == xn.argmax(axis=1)[:, None])
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_export_forms_are_swapped_in_and_put_back():
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    kinds = lambda: {type(m).__name__ for m in model.sublayers()}  # noqa: E731
    before = [(n, id(m)) for n, m in model.named_sublayers()]
    params = {id(p) for p in model.parameters()}
    assert {"Upsample", "Sigmoid", "PReLU", "ChannelMax"} <= kinds()
    x = _x((1, 3, 16, 24))
    model.eval()
    ref = model(x).numpy()
    with export_forms(model):
        inside = kinds()
        assert not {"Upsample", "Sigmoid", "PReLU", "ChannelMax"} & inside
        assert {"BilinearUp2", "LegacySigmoid", "ChannelwisePReLU", "MaxReduce"} <= inside
        # The one PReLU of every DAU is still one layer.
        acts = {id(blocks[0].body[1]) for blocks in model.body[0].body[0].blocks}
        assert len(acts) == 1
        assert np.abs(model(x).numpy() - ref).max() < 1e-5
        # Parameters are the model's own, not copies.
        assert {id(p) for p in model.parameters()} == params
    assert [(n, id(m)) for n, m in model.named_sublayers()] == before

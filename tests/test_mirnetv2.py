"""The MIRNet-v2 port against the official network: structure, weights, outputs."""

import json
import math
import os

import numpy as np
import paddle
import pytest

from ppmirnet.convert import infer_network, load_official_weights
from ppmirnet.modeling import MIRNetV2
from tests.helpers import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SMALL = os.path.join(FIXTURES, "mirnetv2_small")
CONFIGS = os.path.join(FIXTURES, "mirnetv2_configs")


def unique_trainable(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


def official_model(weights):
    name, arch = infer_network(weights)
    assert name == "MIRNetV2"
    model = MIRNetV2(**arch)
    load_official_weights(model, weights)
    model.eval()
    return model


@pytest.fixture(scope="module")
def small_io():
    return dict(np.load(os.path.join(SMALL, "io.npz")))


@pytest.fixture(scope="module")
def small():
    return official_model(dict(np.load(os.path.join(SMALL, "weights.npz"))))


@pytest.fixture(scope="module")
def default_model():
    return MIRNetV2()


def test_default_parameter_count(default_model):
    assert unique_trainable(default_model) == 5_858_560


def test_state_dict_keys_and_shapes_are_the_official_ones(default_model):
    expected = {}
    with open(os.path.join(SMALL, "state_dict_keys.txt")) as f:
        for line in f:
            name, shape = line.rstrip("\n").split(" ", 1)
            expected[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    ours = {k: tuple(v.shape) for k, v in default_model.state_dict().items()}
    assert len(expected) == 238
    assert ours == expected


def test_rcb_and_skff_are_shared_by_both_passes(small):
    # Each RCB and SKFF appears once in the parameters although applied twice;
    # the two passes' upsamplers are separate modules.
    mrb = small.body[0].body[0]
    calls = {}
    hooks = [getattr(mrb, n).register_forward_post_hook(
        lambda layer, inp, out, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
        for n in ("dau_top", "dau_mid", "dau_bot", "skff_top", "skff_mid", "up21_1", "up21_2")]
    small(paddle.rand([1, 3, 16, 16]))
    for h in hooks:
        h.remove()
    assert calls == {"dau_top": 2, "dau_mid": 2, "dau_bot": 2, "skff_top": 2, "skff_mid": 2,
                     "up21_1": 1, "up21_2": 1}


def test_small_model_matches_official_output(small, small_io):
    out = small(paddle.to_tensor(small_io["input"])).numpy()
    assert out.shape == small_io["output"].shape
    # Measured: about 1e-6.
    assert np.abs(out - small_io["output"]).max() < 1e-5


@pytest.mark.parametrize("name", ["bias_nfeat16", "defocus_nfeat16", "nfeat8_cf2"])
def test_other_configurations_match_official_output(name):
    with open(os.path.join(CONFIGS, "meta.json")) as f:
        meta = json.load(f)[name]
    weights = dict(np.load(os.path.join(CONFIGS, f"{name}_weights.npz")))
    io = np.load(os.path.join(CONFIGS, f"{name}_io.npz"))
    model = official_model(weights)
    assert unique_trainable(model) == meta["unique_params"]
    official = dict(meta["arch"])
    if "inp_channels" in official:
        official["in_channels"] = official.pop("inp_channels")
    assert {k: model.arch[k] for k in official} == official
    out = model(paddle.to_tensor(io["input"])).numpy()
    assert out.shape == io["output"].shape
    assert np.abs(out - io["output"]).max() < 1e-5


def test_defocus_model_has_no_image_residual():
    model = MIRNetV2(in_channels=6, n_feat=16, n_MRB=1, task="defocus_deblurring")
    model.eval()
    for p in model.conv_out.parameters():
        p.set_value(paddle.zeros(p.shape))
    out = model(paddle.rand([1, 6, 16, 16])).numpy()
    assert out.shape == (1, 3, 16, 16) and np.all(out == 0)


@pytest.mark.parametrize("shape", [(37, 45), (16, 50), (9, 18)])
def test_any_size_is_reflect_padded_and_cropped(small, shape):
    rng = np.random.default_rng(1)
    x = rng.random((1, 3, *shape), dtype=np.float32)
    out = small(paddle.to_tensor(x)).numpy()
    assert out.shape == x.shape
    h, w = shape
    padded = np.pad(x, ((0, 0), (0, 0), (0, -h % 4), (0, -w % 4)), mode="reflect")
    ref = small(paddle.to_tensor(padded)).numpy()[:, :, :h, :w]
    np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_RRG=3), "n_RRG=3"), (dict(height=2), "height=2"), (dict(width=3), "width=3"),
    (dict(scale=4), "scale=4"), (dict(task="deraining"), "task='deraining'"),
    (dict(in_channels=6), "in_channels must equal out_channels"),
    (dict(n_feat=24), "24/36/54 channels: not every stream is divisible by 4"),
    (dict(n_feat=10), "10/15/22 channels"),
])
def test_arguments_the_official_network_ignores_or_cannot_build_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MIRNetV2(**kwargs)


def test_initialisation_is_pytorch_default(default_model):
    w = default_model.conv_in.weight.numpy()  # (80, 3, 3, 3): fan_in 27
    bound = 1 / math.sqrt(27)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    grouped = default_model.body[3].body[0].dau_bot.body[0].weight.numpy()  # 180 ch, 4 groups
    bound = 1 / math.sqrt(45 * 9)
    assert np.abs(grouped).max() <= bound and np.abs(grouped).max() > 0.99 * bound


def test_static_export_matches_dygraph(small, tmp_path):
    spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "x")]
    prefix = str(tmp_path / "model")
    paddle.jit.save(paddle.jit.to_static(small, input_spec=spec, full_graph=True), prefix)
    loaded = paddle.jit.load(prefix)
    loaded.eval()
    rng = np.random.default_rng(3)
    for shape in [(1, 3, 32, 48), (2, 3, 37, 50)]:
        x = rng.random(shape, dtype=np.float32)
        ref = small(paddle.to_tensor(x)).numpy()
        out = loaded(paddle.to_tensor(x)).numpy()
        assert out.shape == shape
        assert np.abs(out - ref).max() < 1e-5

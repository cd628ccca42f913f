"""The MIRNet port against the official network: structure, weights, outputs."""

import json
import math
import os

import numpy as np
import paddle
import pytest

from ppmirnet.convert import infer_arch, load_official_weights, official_key
from ppmirnet.modeling import MIRNet
from ppmirnet.modeling.export_forms import export_forms
from tests.helpers import FIXTURE, ROOT

# Name, shape and kind of every entry of the official default network's state dict.
OFFICIAL_KEYS = os.path.join(ROOT, "tests", "fixtures", "official_state_dict_keys_full.txt")


def unique_trainable(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


@pytest.fixture(scope="module")
def official():
    weights = dict(np.load(os.path.join(FIXTURE, "weights.npz")))
    io = dict(np.load(os.path.join(FIXTURE, "io.npz")))
    return weights, io


@pytest.fixture(scope="module")
def small(official):
    weights, _ = official
    model = MIRNet(**infer_arch(weights))
    load_official_weights(model, weights)
    model.eval()
    return model


@pytest.fixture(scope="module")
def default_model():
    return MIRNet()


def test_default_parameter_count_has_official_weight_sharing(default_model):
    # A port with one DAU per column has 42,239,298.
    assert unique_trainable(default_model) == 31_787_419


def test_state_dict_keys_and_shapes_are_the_official_ones(default_model):
    expected = {}
    with open(OFFICIAL_KEYS) as f:
        for line in f:
            name, shape = line.split("\t")[:2]
            expected[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    ours = {official_key(k): tuple(v.shape) for k, v in default_model.state_dict().items()}
    assert ours == expected


def test_aliases_share_one_tensor(official, small):
    # Every alias group of the official state dict is one parameter here.
    with open(os.path.join(FIXTURE, "aliases.json")) as f:
        groups = json.load(f)
    by_official = {official_key(k): v for k, v in small.state_dict().items()}
    for group in groups:
        tensors = {id(by_official[k]) for k in group}
        assert len(tensors) == 1, group
    # One PReLU for every DAU: 6 DAU positions in the small fixture model.
    assert len(groups[1]) == 6 and all(".body.1.weight" in k for k in groups[1])


def test_small_model_matches_official_output(official, small):
    _, io = official
    out = small(paddle.to_tensor(io["input"])).numpy()
    assert out.shape == io["output"].shape
    assert np.abs(out - io["output"]).max() < 1e-5


def test_intermediate_activations_match_official(official, small):
    _, io = official
    captured = {}
    names = [k[len("act/"):] for k in io if k.startswith("act/")]
    layers = dict(small.named_sublayers())
    hooks = []
    for name in names:
        def hook(layer, inputs, output, name=name):
            captured.setdefault(name, output.numpy())
        hooks.append(layers[name].register_forward_post_hook(hook))
    small(paddle.to_tensor(io["input"]))
    for h in hooks:
        h.remove()
    assert set(captured) == set(names) and len(names) >= 5
    for name in names:
        assert np.abs(captured[name] - io["act/" + name]).max() < 1e-5, name


@pytest.mark.parametrize("shape", [(37, 45), (64, 50), (9, 17)])
def test_any_size_is_reflect_padded_and_cropped(small, shape):
    rng = np.random.default_rng(1)
    x = rng.random((1, 3, *shape), dtype=np.float32)
    out = small(paddle.to_tensor(x)).numpy()
    assert out.shape == x.shape
    h, w = shape
    ph, pw = -h % 8, -w % 8
    padded = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    ref = small(paddle.to_tensor(padded)).numpy()[:, :, :h, :w]
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_multiple_of_eight_input_is_not_padded(official, small):
    _, io = official
    x = paddle.to_tensor(io["input"][:, :, :40, :48])
    out = small(x).numpy()
    assert out.shape == (1, 3, 40, 48)


@pytest.mark.parametrize("cfg", [dict(height=1, width=1), dict(height=2, width=3),
                                 dict(height=4, width=2), dict(n_RRG=2, n_MSRB=2)])
def test_other_configurations_build_and_run(cfg):
    kwargs = dict(n_feat=8, n_RRG=1, n_MSRB=1)
    kwargs.update(cfg)
    model = MIRNet(**kwargs)
    model.eval()
    x = paddle.rand([2, 3, 24, 40])
    assert model(x).shape == [2, 3, 24, 40]
    assert infer_arch({official_key(k): v.numpy() for k, v in model.state_dict().items()}) == {
        "in_channels": 3, "out_channels": 3, "n_feat": 8, "kernel_size": 3, "bias": False,
        "n_RRG": kwargs["n_RRG"], "n_MSRB": kwargs["n_MSRB"],
        "height": kwargs.get("height", 3), "width": kwargs.get("width", 2)}


def test_unsupported_stride_is_rejected():
    with pytest.raises(ValueError, match="stride=3"):
        MIRNet(n_feat=8, n_RRG=1, n_MSRB=1, stride=3)


def test_initialisation_is_pytorch_default(default_model):
    w = default_model.conv_in.weight.numpy()  # (64, 3, 3, 3): fan_in 27
    bound = 1 / math.sqrt(27)
    assert np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
    big = default_model.body[0].body[0].blocks[2][0].body[0].weight.numpy()  # 256x256x3x3
    bound = 1 / math.sqrt(256 * 9)
    assert np.abs(big).max() <= bound and np.abs(big).max() > 0.99 * bound
    up = default_model.body[0].body[0].up["256_2"].body[0].top[2].weight.numpy()
    assert np.abs(up).max() <= 1 / math.sqrt(256 * 9)  # transposed conv: fan_in from dim 1
    slopes = [v.numpy() for k, v in default_model.state_dict().items() if k.endswith("._weight")]
    assert slopes and all(np.all(s == 0.25) for s in slopes)


def test_same_seed_same_initial_weights():
    paddle.seed(7)
    a = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1).state_dict()
    paddle.seed(7)
    b = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1).state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_static_export_matches_dygraph(small, tmp_path):
    spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "x")]
    prefix = str(tmp_path / "model")
    with export_forms(small):
        paddle.jit.save(paddle.jit.to_static(small, input_spec=spec, full_graph=True), prefix)
    loaded = paddle.jit.load(prefix)
    loaded.eval()
    rng = np.random.default_rng(3)
    for shape in [(1, 3, 64, 64), (2, 3, 37, 50)]:
        x = rng.random(shape, dtype=np.float32)
        ref = small(paddle.to_tensor(x)).numpy()
        out = loaded(paddle.to_tensor(x)).numpy()
        assert out.shape == shape
        assert np.abs(out - ref).max() < 1e-5


@pytest.mark.parametrize("name, params", [("h1w1", 2_996), ("rrg2_msrb2_h2w3", 57_505)])
def test_other_configurations_match_official_output(name, params):
    base = os.path.join(ROOT, "tests", "fixtures", "official_configs", name)
    weights = dict(np.load(base + "_weights.npz"))
    io = np.load(base + "_io.npz")
    model = MIRNet(**infer_arch(weights))
    assert unique_trainable(model) == params
    load_official_weights(model, weights)
    model.eval()
    out = model(paddle.to_tensor(io["input"])).numpy()
    assert np.abs(out - io["output"]).max() < 1e-5

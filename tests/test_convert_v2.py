"""Conversion of official MIRNet-v2 checkpoints (BasicSR layout) by the library and the tool."""

import os

import numpy as np
import paddle
import pytest

from ppmirnet.convert import convert_checkpoint, infer_network, load_official_state_dict
from ppmirnet.engine.checkpoint import read_weights
from ppmirnet.engine.dygraph import load_model
from ppmirnet.errors import ConversionError
from ppmirnet.modeling import MIRNetV2
from tests.helpers import ROOT, run_cli

SMALL = os.path.join(ROOT, "tests", "fixtures", "mirnetv2_small")
CONFIGS = os.path.join(ROOT, "tests", "fixtures", "mirnetv2_configs")
DEFOCUS = os.path.join(CONFIGS, "defocus_nfeat16_weights.npz")


@pytest.fixture(scope="module")
def official():
    return dict(np.load(os.path.join(SMALL, "weights.npz")))


def _run(model, io_path):
    io = np.load(io_path)
    return np.abs(model(paddle.to_tensor(io["input"])).numpy() - io["output"]).max()


def test_tool_converts_v2_npz_and_output_matches_official(tmp_path):
    dst = tmp_path / "v2.pdparams"
    proc = run_cli("tools/convert_weights.py", "--src", os.path.join(SMALL, "weights.npz"),
                   "--dst", str(dst))
    assert proc.returncode == 0, proc.stderr
    assert "(MIRNetV2: in_channels=3, out_channels=3, n_feat=16, chan_factor=1.5, n_MRB=2, " \
           "bias=False, task=None)" in proc.stdout
    model = MIRNetV2(n_feat=16)
    _, state, arch = read_weights(str(dst))
    assert arch == {"name": "MIRNetV2", **model.arch}
    model.set_state_dict(state)
    model.eval()
    assert _run(model, os.path.join(SMALL, "io.npz")) < 1e-5


def test_six_input_channels_mean_the_defocus_model(tmp_path):
    name, arch = infer_network(dict(np.load(DEFOCUS)))
    assert name == "MIRNetV2"
    assert arch == dict(in_channels=6, out_channels=3, n_feat=16, chan_factor=1.5, n_MRB=1,
                        bias=False, task="defocus_deblurring")
    dst = tmp_path / "dpdd.pdparams"
    assert convert_checkpoint(DEFOCUS, str(dst))[1]["task"] == "defocus_deblurring"
    # The weights say which network they are: a config naming another one
    # still gets the 6-channel MIRNet-v2.
    logged = []
    model = load_model({"Arch": {"name": "MIRNet"}, "Global": {"pretrained_model": None}},
                       str(dst), log=logged.append)
    assert isinstance(model, MIRNetV2) and model.arch == dict(MIRNetV2(**arch).arch)
    assert "records Arch MIRNetV2(in_channels=6" in logged[0]
    assert _run(model, os.path.join(CONFIGS, "defocus_nfeat16_io.npz")) < 1e-5


def test_task_flag_and_other_arch_fields_are_read(official):
    weights = dict(np.load(os.path.join(CONFIGS, "nfeat8_cf2_weights.npz")))
    assert infer_network(weights)[1]["chan_factor"] == 2.0
    weights = dict(np.load(os.path.join(CONFIGS, "bias_nfeat16_weights.npz")))
    assert infer_network(weights)[1]["bias"] is True
    assert infer_network(official, task="defocus_deblurring")[1]["task"] == "defocus_deblurring"


def test_basicsr_params_layout_read_without_torch():
    # Written by PyTorch (tests/fixtures/pth/make_pth.py): {'params': float16 tensors}, zip format.
    src = os.path.join(ROOT, "tests", "fixtures", "pth", "mirnetv2_zip.pth")
    state = load_official_state_dict(src)
    expected = dict(np.load(os.path.join(CONFIGS, "nfeat8_cf2_weights.npz")))
    assert set(state) == set(expected)
    assert all(np.array_equal(state[k], expected[k]) for k in expected)


def test_v2_mismatches_are_named_and_nothing_written(tmp_path, official):
    broken = dict(official)
    del broken["body.1.body.0.skff_mid.fcs.1.weight"]
    broken["body.0.body.0.dau_top.body.0.weight"] = np.zeros((16, 16, 5, 5), "float32")
    broken["body.0.body.0.extra.weight"] = np.zeros(3, "float32")
    src = tmp_path / "broken.npz"
    np.savez(src, **broken)
    dst = tmp_path / "out.pdparams"
    proc = run_cli("tools/convert_weights.py", "--src", str(src), "--dst", str(dst))
    assert proc.returncode == 1
    assert "missing in checkpoint: body.1.body.0.skff_mid.fcs.1.weight" in proc.stderr
    assert ("shape mismatch for body.0.body.0.dau_top.body.0.weight: checkpoint (16, 16, 5, 5), "
            "model (16, 16, 3, 3)") in proc.stderr
    assert "unexpected in checkpoint: body.0.body.0.extra.weight" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["broken.npz"]


def test_v2_with_other_than_four_groups_is_refused(official):
    three = {k: v for k, v in official.items() if not k.startswith("body.3.")}
    with pytest.raises(ConversionError, match="4 residual groups; this checkpoint has 3"):
        infer_network(three)


def test_task_for_a_mirnet_checkpoint_is_refused():
    weights = dict(np.load(os.path.join(ROOT, "tests", "fixtures", "official_small", "weights.npz")))
    with pytest.raises(ConversionError, match="applies to MIRNet-v2"):
        infer_network(weights, task="defocus_deblurring")

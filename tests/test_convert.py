"""Official checkpoint conversion: the library and tools/convert_weights.py."""

import os

import numpy as np
import paddle
import pytest

from ppmirnet.convert import convert_state_dict, infer_arch, load_official_state_dict
from ppmirnet.errors import ConversionError, UserError
from ppmirnet.engine.checkpoint import read_weights
from ppmirnet.modeling import MIRNet
from tests.helpers import FIXTURE, run_cli

WEIGHTS = os.path.join(FIXTURE, "weights.npz")


@pytest.fixture(scope="module")
def official():
    return dict(np.load(WEIGHTS))


def test_tool_converts_npz_and_output_matches_official(tmp_path):
    dst = tmp_path / "mirnet_small.pdparams"
    proc = run_cli("tools/convert_weights.py", "--src", WEIGHTS, "--dst", str(dst))
    assert proc.returncode == 0, proc.stderr
    assert "n_feat=16" in proc.stdout and "n_RRG=1" in proc.stdout
    model = MIRNet(n_feat=16, n_RRG=1, n_MSRB=1)
    _, state, arch = read_weights(str(dst))
    # The converted file records the network it belongs to.
    assert arch == {"name": "MIRNet", **model.arch}
    model.set_state_dict(state)
    model.eval()
    io = np.load(os.path.join(FIXTURE, "io.npz"))
    out = model(paddle.to_tensor(io["input"])).numpy()
    assert np.abs(out - io["output"]).max() < 1e-5


def test_module_prefix_is_stripped(tmp_path, official):
    src = tmp_path / "dp.npz"
    np.savez(src, **{"module." + k: v for k, v in official.items()})
    state = load_official_state_dict(str(src))
    assert set(state) == set(official)


def test_missing_key_is_named_and_nothing_written(tmp_path, official):
    broken = dict(official)
    del broken["conv_out.weight"]
    src = tmp_path / "broken.npz"
    np.savez(src, **broken)
    dst = tmp_path / "out.pdparams"
    proc = run_cli("tools/convert_weights.py", "--src", str(src), "--dst", str(dst))
    assert proc.returncode == 1
    assert "missing in checkpoint: conv_out.weight" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not dst.exists() and os.listdir(tmp_path) == ["broken.npz"]


def test_shape_mismatch_and_unexpected_keys_are_named(official):
    broken = dict(official)
    broken["conv_in.weight"] = np.zeros((16, 3, 5, 5), "float32")
    broken["extra.weight"] = np.zeros(3, "float32")
    with pytest.raises(ConversionError) as err:
        convert_state_dict(broken, MIRNet(n_feat=16, n_RRG=1, n_MSRB=1))
    assert "shape mismatch for conv_in.weight: checkpoint (16, 3, 5, 5), model (16, 3, 3, 3)" in str(err.value)
    assert "unexpected in checkpoint: extra.weight" in str(err.value)


def test_separate_dau_weights_are_reported(official):
    broken = dict(official)
    key = "body.0.body.0.blocks.0.1.conv1x1.weight"
    broken[key] = broken[key] + 1.0
    with pytest.raises(ConversionError, match="blocks.0.1.conv1x1.weight should share its value"):
        convert_state_dict(broken, MIRNet(n_feat=16, n_RRG=1, n_MSRB=1))


def test_arch_is_read_from_checkpoint(official):
    assert infer_arch(official) == dict(in_channels=3, out_channels=3, n_feat=16, kernel_size=3,
                                        n_RRG=1, n_MSRB=1, height=3, width=2, bias=False)


def test_pth_that_is_no_checkpoint_is_named(tmp_path):
    src = tmp_path / "model_denoising.pth"
    src.write_bytes(b"not really a checkpoint")
    with pytest.raises(UserError) as err:
        load_official_state_dict(str(src))
    assert str(err.value) == (f"cannot read {src} as a PyTorch checkpoint: not a zip archive nor "
                              f"a legacy PyTorch file")


def test_missing_source_file_is_a_clean_error(tmp_path):
    proc = run_cli("tools/convert_weights.py", "--src", str(tmp_path / "nope.pth"),
                   "--dst", str(tmp_path / "x.pdparams"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: checkpoint not found: {tmp_path / 'nope.pth'}"

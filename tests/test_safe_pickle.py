"""Weights files that would run code are refused by name, through every command that loads one.

Each payload runs ``touch <marker>`` through ``os.system`` when unpickled by plain pickle
(checked once below, so these tests can fail): after a refusal the marker must not exist.
"""

import os
import pickle
import shutil
import sys

import numpy as np
import paddle
import pytest

from helpers import ROOT, run_cli
from lite_helpers import LITE_CONFIG, tiny_overrides
from ppmirnet import Restorer, compat
from ppmirnet.engine import checkpoint as ckpt
from ppmirnet.errors import UserError
from ppmirnet.modeling import MIRNet
from ppmirnet.safe_pickle import UnsafePickleError, check_paddle_bytes, load_paddle, load_torch

PTH = os.path.join(ROOT, "tests", "fixtures", "pth")


class Payload:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class Evaluates:
    """What Paddle's pickler writes for a raw DenseTensor: a call of ``eval``."""

    def __reduce__(self):
        return eval, ("1 + 1",)


def _refusal(path):
    return (f"error: {path} would call posix.system when loaded, which weights never need: "
            f"refused, nothing in it was run (load only weights from sources you trust)\n")


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "payload-ran"
    monkeypatch.setenv("PPMIRNET_PAYLOAD_MARKER", str(path))  # read by the .pth fixtures' payload
    return path


@pytest.fixture(scope="module")
def lite_weights(tmp_path_factory):
    """A state dict of the lite network and its Arch section."""
    paddle.seed(3)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    return model.state_dict(), {"name": "MIRNet", **model.arch}


def _evil_weights(path, lite_weights, marker):
    """The lite weights, loadable in every other way, plus a payload."""
    state, arch = lite_weights
    paddle.save(dict(ckpt.with_arch(state, arch), extra=Payload(f'touch "{marker}"')), str(path))
    return str(path)


def test_the_payload_runs_under_plain_pickle(tmp_path, lite_weights, marker):
    evil = _evil_weights(tmp_path / "evil.pdparams", lite_weights, marker)
    with open(evil, "rb") as f:
        pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize("tool", ["predict", "eval", "export", "restorer"])
def test_a_pdparams_payload_is_refused(tool, tmp_path, lite_weights, marker, lite_root):
    evil = _evil_weights(tmp_path / "evil.pdparams", lite_weights, marker)
    if tool == "restorer":
        with pytest.raises(UnsafePickleError) as err:
            Restorer(evil, device="cpu")
        assert f"error: {err.value}\n" == _refusal(evil)
    else:
        args = {
            "predict": ["tools/predict.py", "--weights", evil, "--input",
                        os.path.join(ROOT, "tests", "fixtures", "pth", "make_pth.py"),
                        "--output", str(tmp_path / "out")],
            "eval": ["tools/eval.py", "-c", LITE_CONFIG, "-o", f"Global.pretrained_model={evil}",
                     "-o", f"DataLoader.Eval.dataset.root={lite_root}",
                     "-o", f"Global.output_dir={tmp_path / 'eval'}"],
            "export": ["tools/export_model.py", "-c", LITE_CONFIG,
                       "-o", f"Global.pretrained_model={evil}", "--save_dir", str(tmp_path / "inf")],
        }[tool]
        if tool == "predict":  # a real image, so that only the weights can fail
            import cv2

            args[4] = str(tmp_path / "photo.png")
            cv2.imwrite(args[4], np.full((16, 16, 3), 128, np.uint8))
        proc = run_cli(*args)
        assert proc.returncode == 1
        assert proc.stderr == _refusal(evil)
    assert not marker.exists()


@pytest.mark.parametrize("ext", [".pdparams", ".pdopt", ".pdstates"])
def test_a_resumed_checkpoint_with_a_payload_is_refused(ext, tmp_path, lite_weights, marker, lite_root):
    prefix = str(tmp_path / "ckpt" / "latest")
    state, arch = lite_weights
    ckpt.save_checkpoint(prefix, state, {"LR_Scheduler": {"last_epoch": 1}}, {"epoch": 1}, arch)
    paddle.save({"epoch": 1, "extra": Payload(f'touch "{marker}"')}, prefix + ext)
    overrides = tiny_overrides(lite_root, str(tmp_path / "out"), **{"Global.resume": prefix})
    proc = run_cli("tools/train.py", "-c", LITE_CONFIG, *[a for o in overrides for a in ("-o", o)])
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == _refusal(prefix + ext).strip()
    assert not marker.exists()


@pytest.mark.parametrize("fixture", ["payload_legacy.pth", "payload_zip.pth"])
def test_a_pth_payload_written_by_pytorch_is_refused(fixture, tmp_path, marker, monkeypatch):
    src = os.path.join(PTH, fixture)
    proc = run_cli("tools/convert_weights.py", "--src", src, "--dst", str(tmp_path / "x.pdparams"))
    assert proc.returncode == 1
    assert proc.stderr == _refusal(src)
    assert not os.path.exists(tmp_path / "x.pdparams")

    # The same file served under an official name, through the model zoo.
    folder = tmp_path / "mirror"
    folder.mkdir()
    shutil.copyfile(src, folder / "real_denoising.pth")
    monkeypatch.setenv("PPMIRNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PPMIRNET_DOWNLOAD_MIRROR", str(folder))
    cached = tmp_path / "home" / "weights" / "real_denoising.pth"
    with pytest.raises(UnsafePickleError) as err:
        Restorer.from_pretrained("mirnetv2_sidd", device="cpu")
    assert f"error: {err.value}\n" == _refusal(cached)
    assert not (tmp_path / "home" / "weights" / "mirnetv2_sidd.pdparams").exists()
    assert not marker.exists()


def test_other_names_are_refused_by_name_without_being_called(tmp_path):
    data = pickle.dumps({"w": np.zeros(3, np.float32), "x": Evaluates()}, protocol=4)
    with pytest.raises(UnsafePickleError, match=r"^t\.pdparams would call builtins\.eval when"):
        check_paddle_bytes(data, "t.pdparams")
    # Protocol 2 spells builtins as __builtin__; the name shown is the real one.
    data = pickle.dumps([Evaluates()], protocol=2)
    with pytest.raises(UnsafePickleError, match=r"would call builtins\.eval when"):
        check_paddle_bytes(data, "t.pdopt")
    path = tmp_path / "getattr.pth"
    path.write_bytes(b"\x80\x02cbuiltins\ngetattr\nq\x00.")
    with pytest.raises(UnsafePickleError, match=r"would call builtins\.getattr when"):
        load_torch(str(path))


def test_a_pth_given_as_paddle_weights_says_to_convert_it(tmp_path):
    for fixture in ("mirnet_legacy.pth", "mirnet_zip.pth"):
        src = os.path.join(PTH, fixture)
        with pytest.raises(UserError) as err:
            Restorer(src, device="cpu")
        kind = "a PyTorch checkpoint" if "legacy" in fixture else "a zip archive (a PyTorch checkpoint?)"
        assert str(err.value) == (f"cannot read {src}: it is {kind}, not Paddle weights (convert it "
                                  f"with: ppmirnet convert --src {src} --dst W.pdparams)")


def test_plain_containers_and_arrays_are_admitted():
    import collections

    state = collections.OrderedDict(w=np.arange(6, dtype=np.float32).reshape(2, 3), n=np.int64(3),
                                    s={1, 2}, f=frozenset("a"), b=b"\x00\x01", t=(1.5, None))
    for protocol in (2, 3, 4):
        check_paddle_bytes(pickle.dumps(state, protocol=protocol), "ok.pdparams")


def test_what_training_saves_is_admitted(tmp_path):
    paddle.seed(5)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    opt = paddle.optimizer.Adam(parameters=model.parameters(),
                                learning_rate=paddle.optimizer.lr.CosineAnnealingDecay(1e-3, 10))
    model(paddle.rand([1, 3, 16, 16])).mean().backward()
    opt.step()
    prefix = str(tmp_path / "latest")
    states = {"epoch": 1, "best": {"value": np.float64(30.5)}, "rng": compat.get_rng_state(),
              "lr_scheduler": opt._learning_rate.state_dict(), "scaler": None}
    # As under AMP O2: float32 master copies, Tensors in a nested dict (pickled as tuples).
    masters = {p.name: p.astype("float32") for p in model.parameters()}
    ckpt.save_checkpoint(prefix, model.state_dict(), dict(opt.state_dict(), master_weights=masters),
                         states, {"name": "MIRNet"})
    model_state, opt_state, loaded = ckpt.load_checkpoint(prefix)
    assert all(np.array_equal(model_state[k].numpy(), v.numpy()) for k, v in model.state_dict().items())
    assert opt_state.keys() == set(opt.state_dict()) | {"master_weights"}
    assert all(np.array_equal(np.asarray(opt_state["master_weights"][k]), v.numpy())
               for k, v in masters.items())
    assert loaded["best"]["value"] == 30.5 and loaded["epoch"] == 1
    # Paddle 3 stores the generator state (a GeneratorState object), Paddle 2.6 none.
    assert compat.set_rng_state(loaded["rng"]) == (
        None if compat.paddle_version()[0] != 2 else
        "Paddle 2.6, which saved it, cannot store a random state")
    assert load_paddle(prefix + ".pdparams").keys() == paddle.load(prefix + ".pdparams").keys()


def test_pth_tensors_are_read_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    legacy = load_torch(os.path.join(PTH, "mirnet_legacy.pth"))
    official = np.load(os.path.join(ROOT, "tests", "fixtures", "official_configs", "h1w1_weights.npz"))
    assert legacy["epoch"] == 60
    assert all(np.array_equal(legacy["state_dict"]["module." + k], official[k]) for k in official.files)
    adam = legacy["optimizer"]
    assert adam["param_groups"][0]["betas"] == (0.9, 0.999)
    assert adam["state"][0]["exp_avg"].shape == (8, 3, 3, 3) and adam["state"][0]["step"] == 1.0
    bare = load_torch(os.path.join(PTH, "mirnet_zip.pth"))
    assert all(np.array_equal(bare[k], official[k]) for k in official.files)


def test_damaged_pth_files_are_named(tmp_path):
    src = os.path.join(PTH, "mirnet_legacy.pth")
    cut = tmp_path / "cut.pth"
    with open(src, "rb") as f:
        cut.write_bytes(f.read()[:-100])
    with pytest.raises(UserError, match=f"cannot read {cut}: the file ends inside storage"):
        load_torch(str(cut))
    with open(os.path.join(PTH, "mirnet_zip.pth"), "rb") as f:
        data = f.read()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=f"cannot read {cut} as a PyTorch checkpoint"):
        load_torch(str(cut))

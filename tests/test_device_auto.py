"""Device ``auto``: the GPU when PaddlePaddle sees one, else the CPU, said in one line; GPU detection mocked."""

import glob

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet import Restorer, commands, restorer
from ppmirnet.config import load_config
from ppmirnet.engine import env
from ppmirnet.engine.checkpoint import save_weights
from ppmirnet.errors import UserError
from ppmirnet.modeling import MIRNet


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    paddle.seed(3)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    path = str(tmp_path_factory.mktemp("auto") / "w.pdparams")
    save_weights(path, model.state_dict(), {"name": "MIRNet", **model.arch})
    return path


def test_auto_resolves_to_the_gpu_only_when_one_is_visible():
    assert env.resolve_device("auto", {}, count=0) == "cpu"
    assert env.resolve_device("auto", {}, count=2) == "gpu"
    # Under paddle.distributed.launch each rank takes the launcher's card.
    launched = {"PADDLE_TRAINER_ID": "1", "FLAGS_selected_gpus": "1"}
    assert env.resolve_device("auto", launched, count=2) == "gpu:1"
    assert env.resolve_device("auto", launched, count=0) == "cpu"
    assert env.resolve_device("gpu:3", {}, count=0) == "gpu:3"  # explicit requests are kept (then checked)


def test_set_device_auto_on_a_cpu_machine_says_so_in_one_line(monkeypatch):
    monkeypatch.setattr(env, "gpu_count", lambda: 0)
    lines = []
    assert env.set_device("auto", 1, log=lines.append) == "cpu"
    assert lines == ["device: auto -> cpu (this PaddlePaddle sees no GPU)"]
    lines.clear()
    assert env.set_device("cpu", 1, log=lines.append) == "cpu"
    assert lines == []  # an explicit device needs no note


def test_set_device_auto_with_a_gpu_picks_it(monkeypatch):
    monkeypatch.setattr(env, "gpu_count", lambda: 2)
    chosen = []
    monkeypatch.setattr(paddle, "set_device", chosen.append)
    lines = []
    assert env.set_device("auto", log=lines.append) == "gpu"
    assert chosen == ["gpu"]
    assert lines == ["device: auto -> gpu (2 GPU(s) visible)"]


def test_gpu_still_fails_clearly_without_one(monkeypatch):
    monkeypatch.setattr(env, "gpu_count", lambda: 0)
    with pytest.raises(UserError) as err:
        env.set_device("gpu", 1)
    assert str(err.value) == ("Global.device is gpu but this PaddlePaddle has no usable GPU; install "
                              "paddlepaddle-gpu (README, Environment) or pass -o Global.device=cpu (or auto)")


def test_auto_is_the_default_of_every_config():
    configs = sorted(glob.glob("configs/*.yaml"))
    assert len(configs) >= 18
    for path in configs:
        assert load_config(path)["Global"]["device"] == "auto", path
    assert load_config("configs/mirnet_lite.yaml", ["Global.device=gpu:1"])["Global"]["device"] == "gpu:1"


def test_restorer_defaults_to_auto_and_logs_the_choice(weights, monkeypatch):
    lines = []
    r = Restorer(weights, log=lines.append)
    assert r.device == "cpu"
    assert lines[0] == "device: auto -> cpu (this PaddlePaddle sees no GPU)"
    assert sum(line.startswith("device:") for line in lines) == 1
    # With a GPU visible, auto picks it (detection mocked; nothing is built).
    monkeypatch.setattr(env, "gpu_count", lambda: 1)
    assert restorer._auto_device("dygraph") == ("gpu", "device: auto -> gpu (1 GPU(s) visible)")
    with pytest.raises(UserError, match="device must be 'auto', 'cpu' or 'gpu', got 'tpu'"):
        Restorer(weights, device="tpu")


def test_predict_without_device_runs_on_the_cpu_here(weights, tmp_path, capsys):
    image = str(tmp_path / "in.png")
    cv2.imwrite(image, np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8))
    code = commands.main(["predict", "--weights", weights, "--input", image, "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == "device: auto -> cpu (this PaddlePaddle sees no GPU)"
    restored = cv2.imread(str(tmp_path / "out" / "in.png"))[:, :, ::-1]
    expected = Restorer(weights, device="cpu")(cv2.imread(image)[:, :, ::-1])
    np.testing.assert_array_equal(restored, expected)

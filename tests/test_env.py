"""CPU threads of dygraph's math library: set with the device, from Global.cpu_threads or the cores."""

import paddle
import pytest

from ppmirnet import compat
from ppmirnet.config import load_config
from ppmirnet.engine import env
from ppmirnet.errors import ConfigError


def test_the_default_is_the_process_share_of_the_cores():
    assert env.default_cpu_threads({}, cores=8) == 8
    # One process per rank on the machine under paddle.distributed.launch.
    assert env.default_cpu_threads({"PADDLE_LOCAL_SIZE": "2", "PADDLE_TRAINERS_NUM": "4"}, cores=8) == 4
    assert env.default_cpu_threads({"PADDLE_TRAINERS_NUM": "4"}, cores=2) == 1


def test_selecting_the_cpu_sets_the_math_library_threads(monkeypatch):
    calls = []
    monkeypatch.setattr(paddle.base.core, "set_num_threads", calls.append)
    assert env.set_device("cpu", 3) == "cpu"
    assert env.set_device("cpu") == "cpu"
    assert calls == [3, env.default_cpu_threads()]


def test_global_cpu_threads_is_validated():
    cfg = load_config("configs/mirnet_lite.yaml", ["Global.cpu_threads=1"])
    assert cfg["Global"]["cpu_threads"] == 1
    assert load_config("configs/mirnet_lite.yaml")["Global"]["cpu_threads"] is None
    with pytest.raises(ConfigError, match="Global.cpu_threads"):
        load_config("configs/mirnet_lite.yaml", ["Global.cpu_threads=0"])


def test_the_internal_setter_still_exists():
    # Dygraph CPU kernels run on one thread without it (see compat.set_cpu_math_threads).
    compat.set_cpu_math_threads(env.default_cpu_threads())

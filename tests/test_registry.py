"""Registries (models, losses, datasets, LR schedules) and the Arch schema read from constructors."""

import pytest

from ppmirnet.config import arch_schema, load_config
from ppmirnet.data.builder import build_dataset
from ppmirnet.engine.lr import build_lr_scheduler
from ppmirnet.errors import ConfigError
from ppmirnet.losses import build_loss
from ppmirnet.modeling import MODELS, MIRNet, build_model

from test_config import MINIMAL, _write


@pytest.mark.parametrize("build, section, message", [
    (build_model, {"name": "UNet"}, "unknown Arch.name 'UNet'; expected one of: MIRNet, MIRNetV2"),
    (build_loss, {"name": "L2"}, "unknown loss 'L2'; expected one of: CharbonnierLoss, L1Loss"),
    (build_dataset, {"name": "Nope", "root": "x"},
     "unknown dataset 'Nope'; expected one of: PairedImageFolder, LitePairs, SIDDValidationBlocks"),
    (lambda s: build_lr_scheduler(s, 10, 5), {"name": "Step", "learning_rate": 1.0},
     "unknown LRScheduler 'Step'; expected one of: WarmupCosine, Constant"),
])
def test_unknown_names_list_the_valid_ones(build, section, message):
    with pytest.raises(ConfigError, match=message):
        build(section)


def test_registries_build_with_config_keys():
    model = build_model({"name": "MIRNet", "n_feat": 8, "n_RRG": 1, "n_MSRB": 1})
    assert isinstance(model, MIRNet) and model.arch["n_feat"] == 8
    assert build_loss({"name": "CharbonnierLoss", "eps": 0.5, "clamp": False}).eps == 0.5
    constant = build_lr_scheduler({"name": "Constant", "learning_rate": 0.25}, 10, 5)
    assert constant.get_lr() == 0.25
    cosine = build_lr_scheduler({"name": "WarmupCosine", "learning_rate": 1.0, "warmup_epochs": 2.0,
                                 "eta_min": 0.0, "by_epoch": True}, 10, 5)
    assert cosine.lr_at(0) == 0.5 and cosine.lr_at(5) == 1.0


def test_mirnet_arch_keys_and_defaults_come_from_its_constructor():
    schema = arch_schema(MIRNet)
    assert {k: f.default for k, f in schema.items()} == {
        "in_channels": 3, "out_channels": 3, "n_feat": 64, "kernel_size": 3, "stride": 2,
        "n_RRG": 3, "n_MSRB": 2, "height": 3, "width": 2, "bias": False}
    assert schema["bias"].types == (bool,) and schema["n_feat"].types == (int,)


class ToyNet:
    """A network whose constructor has every kind of default the schema reads."""

    def __init__(self, n_feat=8, chan_factor=1.5, task=None, bias=False, mode="fast"):
        self.args = dict(n_feat=n_feat, chan_factor=chan_factor, task=task, bias=bias, mode=mode)

    @classmethod
    def check_arch(cls, n_feat=8, chan_factor=1.5, task=None, bias=False, mode="fast"):
        if task not in (None, "denoise", "deblur"):
            raise ValueError(f"task is {task!r}, expected one of: null, denoise, deblur")


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(MODELS, "ToyNet", ToyNet)


def test_a_second_network_gets_its_arch_section_from_its_signature(tmp_path, toy_registered):
    path = _write(tmp_path, MINIMAL + "Arch: {name: ToyNet}\n")
    assert load_config(path)["Arch"] == {"name": "ToyNet", "n_feat": 8, "chan_factor": 1.5,
                                         "task": None, "bias": False, "mode": "fast"}
    cfg = load_config(path, ["Arch.chan_factor=2", "Arch.task=denoise", "Arch.bias=true"])
    assert cfg["Arch"]["chan_factor"] == 2.0 and isinstance(cfg["Arch"]["chan_factor"], float)
    assert cfg["Arch"]["task"] == "denoise" and cfg["Arch"]["bias"] is True
    assert load_config(path, ["Arch.task=null"])["Arch"]["task"] is None
    assert isinstance(build_model(cfg["Arch"]), ToyNet)


@pytest.mark.parametrize("overrides, message", [
    (["Arch.height=3"], r"c.yaml: unknown key Arch.height$"),
    (["Arch.chan_factor=wide"], r"c.yaml: Arch.chan_factor is 'wide' \(str\), expected float"),
    (["Arch.n_feat=1.5"], r"c.yaml: Arch.n_feat is 1.5 \(float\), expected int"),
    (["Arch.bias=1"], r"c.yaml: Arch.bias is 1 \(int\), expected bool"),
    (["Arch.task=3"], r"c.yaml: Arch.task is 3 \(int\), expected str"),
    (["Arch.mode=null"], r"c.yaml: Arch.mode must not be null"),
    (["Arch.task=paint"], r"c.yaml: Arch: task is 'paint', expected one of: null, denoise, deblur"),
])
def test_second_network_bad_values_name_the_key_and_file(tmp_path, toy_registered, overrides, message):
    path = _write(tmp_path, MINIMAL + "Arch: {name: ToyNet}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides)


def test_mirnet_keys_are_still_checked(tmp_path):
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key Arch.chan_factor"):
        load_config(path, ["Arch.name=MIRNet", "Arch.chan_factor=1.5"])
    with pytest.raises(ConfigError, match=r"c.yaml: Arch.n_feat is 'big' \(str\), expected int"):
        load_config(path, ["Arch.n_feat=big"])


@pytest.mark.parametrize("override, message", [
    ("Arch.n_feat=4", "n_feat is 4, must be >= 8"),
    ("Arch.n_feat=0", "n_feat is 0, must be >= 1"),
    ("Arch.n_RRG=0", "n_RRG is 0, must be >= 1"),
    ("Arch.out_channels=1", "out_channels is 1, must equal in_channels"),
    ("Arch.kernel_size=4", "kernel_size is 4, must be odd"),
    ("Arch.stride=3", "stride=3: MIRNet's resamplers double the channels"),
])
def test_architectures_that_cannot_be_built_are_refused_at_load(tmp_path, override, message):
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"c.yaml: Arch: " + message):
        load_config(path, [override])


def test_every_argument_needs_a_default():
    class NoDefault:
        def __init__(self, n_feat, bias=False):
            pass

    with pytest.raises(TypeError, match="argument n_feat needs a default"):
        arch_schema(NoDefault)


def test_arch_section_rebuilds_a_registered_network():
    from ppmirnet.modeling import arch_section

    model = build_model({"name": "MIRNet", "n_feat": 8, "n_RRG": 1, "n_MSRB": 1, "width": 1})
    section = arch_section(model)
    assert section["name"] == "MIRNet" and section["width"] == 1 and section["n_feat"] == 8
    assert arch_section(build_model(section)) == section
    with pytest.raises(ValueError, match="ToyNet is not in ppmirnet.modeling.MODELS"):
        arch_section(ToyNet())


def test_mirnetv2_arch_section_comes_from_its_constructor(tmp_path):
    path = _write(tmp_path, MINIMAL)
    arch = load_config(path, ["Arch.name=MIRNetV2"])["Arch"]
    assert arch == {"name": "MIRNetV2", "in_channels": 3, "out_channels": 3, "n_feat": 80,
                    "chan_factor": 1.5, "n_RRG": 4, "n_MRB": 2, "height": 3, "width": 2,
                    "scale": 1, "bias": False, "task": None}
    arch = load_config(path, ["Arch.name=MIRNetV2", "Arch.task=defocus_deblurring",
                              "Arch.in_channels=6", "Arch.chan_factor=2"])["Arch"]
    assert arch["task"] == "defocus_deblurring" and arch["chan_factor"] == 2.0


@pytest.mark.parametrize("override, message", [
    ("Arch.n_RRG=3", "MIRNetV2 n_RRG=3: the official network always builds n_RRG=4"),
    ("Arch.task=paint", "MIRNetV2 task='paint': expected None or 'defocus_deblurring'"),
    ("Arch.n_feat=10", "MIRNetV2 n_feat=10, chan_factor=1.5 gives streams of 10/15/22 channels"),
    ("Arch.chan_factor=0", "MIRNetV2 chan_factor=0.0: must be > 0"),
    ("Arch.n_MRB=0", "MIRNetV2 n_MRB=0: must be >= 1"),
    ("Arch.out_channels=1", "MIRNetV2 adds its input to its output"),
])
def test_mirnetv2_architectures_that_cannot_be_built_are_refused_at_load(tmp_path, override, message):
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"c.yaml: Arch: " + message.replace("(", r"\(")):
        load_config(path, ["Arch.name=MIRNetV2", override])
    with pytest.raises(ConfigError, match=r"c.yaml: Arch.chan_factor is 'x' \(str\), expected float"):
        load_config(path, ["Arch.name=MIRNetV2", "Arch.chan_factor=x"])

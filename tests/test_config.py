"""Configs: schema checks, overrides parsed as YAML, _base_ merging, saving."""

import os

import pytest
import yaml

from ppmirnet.config import apply_overrides, dump_config, load_config
from ppmirnet.errors import ConfigError

from helpers import ROOT

CONFIGS = os.path.join(ROOT, "configs")


def _write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


MINIMAL = """
Global: {epochs: 1, output_dir: out}
LRScheduler: {learning_rate: 1.0e-3}
DataLoader:
  Train:
    dataset: {root: data/x}
    sampler: {batch_size: 2}
  Eval:
    dataset: {root: data/y}
"""


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(CONFIGS) if n.endswith(".yaml")))
def test_every_shipped_config_loads(name):
    cfg = load_config(os.path.join(CONFIGS, name))
    assert cfg["Arch"]["name"] == ("MIRNetV2" if name.startswith("mirnetv2_") else "MIRNet")
    for key in ("device", "epochs", "output_dir", "pretrained_model", "resume", "seed",
                "auto_cast", "save_inference_dir"):
        assert key in cfg["Global"]
    assert cfg["DataLoader"]["Train"]["sampler"]["batch_size"] >= 1
    assert cfg["DataLoader"]["Eval"]["sampler"]["batch_size"] >= 1


def test_sidd_config_is_the_official_recipe():
    cfg = load_config(os.path.join(CONFIGS, "mirnet_sidd.yaml"))
    g, arch = cfg["Global"], cfg["Arch"]
    assert g["epochs"] == 60
    assert (arch["n_feat"], arch["n_RRG"], arch["n_MSRB"], arch["height"], arch["width"]) == (64, 3, 2, 3, 2)
    assert cfg["Loss"] == {"name": "CharbonnierLoss", "eps": 1e-3, "clamp": True}
    opt = cfg["Optimizer"]
    assert (opt["name"], opt["beta1"], opt["beta2"], opt["epsilon"], opt["weight_decay"]) == \
        ("Adam", 0.9, 0.999, 1e-8, 1e-8)
    lr = cfg["LRScheduler"]
    assert (lr["name"], lr["learning_rate"], lr["warmup_epochs"], lr["eta_min"], lr["by_epoch"]) == \
        ("WarmupCosine", 2e-4, 3.0, 1e-6, True)
    train = cfg["DataLoader"]["Train"]
    assert train["dataset"]["patch_size"] == 128 and train["dataset"]["augment"] is True
    assert train["sampler"]["batch_size"] == 16
    assert train["mixup"] == {"start_epoch": 6, "alpha": 1.2, "use_identity": False,
                              "one_lambda": False}
    assert cfg["DataLoader"]["Eval"]["dataset"]["name"] == "SIDDValidationBlocks"
    # Every constant of the recipe is written in the file itself, not left to defaults.
    with open(os.path.join(CONFIGS, "mirnet_sidd.yaml")) as f:
        raw = yaml.safe_load(f)
    assert raw["LRScheduler"]["warmup_epochs"] == 3 and raw["Optimizer"]["weight_decay"] == 1e-8
    assert raw["DataLoader"]["Train"]["mixup"]["alpha"] == 1.2


def test_dnd_config_inherits_the_sidd_network():
    cfg = load_config(os.path.join(CONFIGS, "mirnet_dnd.yaml"))
    assert cfg["DataLoader"]["Eval"]["dataset"] == {"name": "DNDBenchmark",
                                                    "root": os.path.join(ROOT, "data", "DND")}
    assert cfg["Arch"]["n_feat"] == 64
    assert cfg["Global"]["output_dir"] == os.path.join(ROOT, "output", "mirnet_dnd")


def test_overrides_are_parsed_as_yaml(tmp_path):
    path = _write(tmp_path, MINIMAL)
    cfg = load_config(path, [
        "Global.epochs=3", "Global.pretrained_model=null", "Global.auto_cast=amp",
        "LRScheduler.learning_rate=1e-3", "Global.eval_during_train=False",
        "Global.output_dir=a b", "Metric.names=[psnr]", "Metric.best=psnr",
    ])
    g = cfg["Global"]
    assert g["epochs"] == 3 and g["pretrained_model"] is None and g["auto_cast"] == "amp"
    assert g["eval_during_train"] is False and g["output_dir"] == "a b"
    assert cfg["LRScheduler"]["learning_rate"] == pytest.approx(1e-3)  # "1e-3" is a YAML string
    assert cfg["Metric"]["names"] == ["psnr"]


def test_metric_protocol_keys_default_to_the_denoising_protocol(tmp_path):
    path = _write(tmp_path, MINIMAL)
    assert load_config(path)["Metric"] == {"names": ["psnr", "ssim"], "best": "psnr",
                                           "color": "rgb", "crop_border": 0, "quantize": False}
    cfg = load_config(path, ["Metric={color: y, crop_border: 4, quantize: true}"])
    assert cfg["Metric"] == {"names": ["psnr", "ssim"], "best": "psnr", "color": "y",
                             "crop_border": 4, "quantize": True}


def test_override_with_another_kind_replaces_the_node(tmp_path):
    path = _write(tmp_path, MINIMAL)
    cfg = load_config(path, ["DataLoader.Eval.dataset={name: SIDDValidationBlocks, noisy_mat: n.mat, gt_mat: g.mat}"])
    assert cfg["DataLoader"]["Eval"]["dataset"] == {
        "name": "SIDDValidationBlocks", "noisy_mat": "n.mat", "gt_mat": "g.mat", "limit": None}
    cfg = load_config(path, ["DataLoader.Eval.dataset.name=DNDBenchmark",
                             "DataLoader.Eval.dataset.root=dnd"])
    assert cfg["DataLoader"]["Eval"]["dataset"] == {"name": "DNDBenchmark", "root": "dnd"}


def test_code_in_values_is_never_run(tmp_path):
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"Global.epochs is \"__import__\('os'\).getcwd\(\)\"|Global.epochs"):
        load_config(path, ["Global.epochs=__import__('os').getcwd()"])


@pytest.mark.parametrize("overrides, message", [
    (["Global.epoch=2"], r"c.yaml: unknown key Global.epoch \(from -o Global.epoch=2\)"),
    (["Nope.x=1"], r"unknown key Nope.x"),
    (["Global.epochs=two"], r"c.yaml: Global.epochs is 'two' \(str\), expected int"),
    (["Global.epochs=true"], r"Global.epochs is True \(bool\), expected int"),
    (["Global.epochs=0"], r"Global.epochs is 0, must be >= 1"),
    (["Global.device=tpu"], r"Global.device is 'tpu', expected auto, cpu, gpu or gpu:N"),
    (["Global.auto_cast=O3"], r"Global.auto_cast is 'O3', expected one of: null, amp, O1, O2"),
    (["Global.output_dir=null"], r"Global.output_dir must not be null"),
    (["Arch.name=UNet"], r"Arch.name is 'UNet', expected one of: MIRNet"),
    (["DataLoader.Train.dataset.split=train"], r"unknown key DataLoader.Train.dataset.split"),
    (["Metric.names=[psnr, lpips]"], r"Metric.names has unknown metric 'lpips'"),
    (["Metric.color=lab"], r"c.yaml: Metric.color is 'lab', expected one of: rgb, y"),
    (["Metric.crop_border=-1"], r"Metric.crop_border is -1, must be >= 0"),
    (["Metric.crop_border=2.5"], r"Metric.crop_border is 2.5 \(float\), expected int"),
    (["Metric.quantize=8"], r"Metric.quantize is 8 \(int\), expected bool"),
    (["Metric.scale=4"], r"unknown key Metric.scale"),
    (["Global.epochs"], r"must look like Section.key=value"),
])
def test_bad_values_name_the_key_and_file(tmp_path, overrides, message):
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides)


def test_bad_files_are_errors_naming_them(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = _write(tmp_path, MINIMAL + "\nGlobal2: {a: 1}\n", "bad.yaml")
    with pytest.raises(ConfigError, match="bad.yaml: unknown key Global2"):
        load_config(bad)
    broken = _write(tmp_path, "Global: {epochs: [1,\n", "broken.yaml")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)
    missing = _write(tmp_path, "Global: {epochs: 1}\n", "missing.yaml")
    with pytest.raises(ConfigError, match="missing.yaml: missing required key Global.output_dir"):
        load_config(missing)


def test_base_config_is_merged(tmp_path):
    _write(tmp_path, MINIMAL, "base.yaml")
    child = _write(tmp_path, "_base_: base.yaml\nGlobal: {epochs: 7}\n"
                             "DataLoader: {Eval: {dataset: {name: DNDBenchmark, root: d}}}\n", "child.yaml")
    cfg = load_config(child)
    assert cfg["Global"]["epochs"] == 7 and cfg["Global"]["output_dir"] == "out"
    assert cfg["DataLoader"]["Eval"]["dataset"] == {"name": "DNDBenchmark", "root": "d"}
    assert cfg["DataLoader"]["Train"]["dataset"]["root"] == "data/x"


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(os.path.join(CONFIGS, "mirnet_sidd.yaml"), ["Global.epochs=2"])
    saved = _write(tmp_path, dump_config(cfg), "resolved.yaml")
    again = load_config(saved)
    for d in (cfg, again):
        d["Global"].pop("config_file")
    assert again == cfg


def test_apply_overrides_leaves_the_input_alone():
    raw = {"Global": {"epochs": 1}}
    out = apply_overrides(raw, ["Global.epochs=5"], "x.yaml")
    assert raw == {"Global": {"epochs": 1}} and out == {"Global": {"epochs": 5}}

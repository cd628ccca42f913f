"""The MIRNet-v2 task configs hold the official recipe of their task."""

import os

import pytest

from ppmirnet.config import load_config
from tests.helpers import ROOT

CONFIGS = os.path.join(ROOT, "configs")
LONG = [92000, 64000, 48000, 36000, 36000, 24000]
SHORT = [46000, 32000, 24000, 18000, 18000, 12000]


@pytest.mark.parametrize("task, iters, periods, color, crop, channels, mixup", [
    ("sidd", LONG, [92000, 208000], "rgb", 0, 3, 1),
    ("fivek", LONG, [92000, 208000], "rgb", 0, 3, 1),
    ("dpdd", LONG, [92000, 208000], "rgb", 0, 6, None),
    ("realsr_x2", SHORT, [46000, 104000], "y", 2, 3, 1),
    ("realsr_x3", SHORT, [46000, 104000], "y", 3, 3, 1),
    ("realsr_x4", SHORT, [46000, 104000], "y", 4, 3, 1),
    ("lol", SHORT, [46000, 104000], "rgb", 0, 3, 1),
])
def test_task_config_is_the_official_recipe(task, iters, periods, color, crop, channels, mixup):
    cfg = load_config(os.path.join(CONFIGS, f"mirnetv2_{task}.yaml"))
    g, arch, train = cfg["Global"], cfg["Arch"], cfg["DataLoader"]["Train"]
    assert g["total_iters"] == sum(iters) and g["epochs"] is None and g["seed"] == 100
    assert (arch["name"], arch["n_feat"], arch["chan_factor"], arch["n_MRB"], arch["in_channels"]) == \
        ("MIRNetV2", 80, 1.5, 2, channels)
    assert arch["task"] == ("defocus_deblurring" if channels == 6 else None)
    assert cfg["Loss"] == {"name": "L1Loss", "clamp": False}
    opt = cfg["Optimizer"]
    assert (opt["name"], opt["beta1"], opt["beta2"], opt["weight_decay"], opt["grad_clip_norm"]) == \
        ("Adam", 0.9, 0.999, 0.0, 0.01)
    assert cfg["LRScheduler"] == {"name": "CosineAnnealingRestartCyclicLR", "learning_rate": 2e-4,
                                  "periods": periods, "restart_weights": [1, 1],
                                  "eta_mins": [3e-4, 1e-6]}
    assert train["progressive"] == {"batch_sizes": [8, 5, 4, 2, 1, 1],
                                    "patch_sizes": [128, 160, 192, 256, 320, 384], "iters": iters}
    assert train["sampler"]["batch_size"] == 8 and train["dataset"]["patch_size"] == 384
    assert train["dataset"]["augment"] is True
    assert train["mixup"]["start_epoch"] == mixup
    assert (train["mixup"]["alpha"], train["mixup"]["use_identity"], train["mixup"]["one_lambda"]) == \
        (1.2, True, True)
    assert (cfg["Metric"]["color"], cfg["Metric"]["crop_border"]) == (color, crop)
    assert cfg["Metric"]["quantize"] is (color == "y")

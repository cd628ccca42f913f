"""Evaluation: mean PSNR/SSIM over a paired dataset, per sample, gathered across cards."""

import sys

import numpy as np

from .. import metrics as M
from .env import all_reduce_sum
from .predictor import DygraphRunner, SelfEnsemble


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def sample_metrics(restored, clean, names=("psnr", "ssim")):
    """Metrics of one restored HxWx3 image against its clean version (both in [0, 1])."""
    out = {}
    if "psnr" in names:
        out["psnr"] = M.psnr(restored, clean, data_range=1.0)
    if "ssim" in names:
        out["ssim"] = M.ssim(restored, clean, data_range=1.0)
    return out


def evaluate(runner, loader, names=("psnr", "ssim"), progress=None, desc="eval"):
    """Mean metrics of ``runner`` (or of the noisy input, if ``runner`` is None) over ``loader``.

    Each image is compared alone after clamping to [0, 1] (PSNR with peak 1,
    SSIM as :func:`ppmirnet.metrics.ssim`) and the per-image values are
    averaged, as the paper does for the 1280 SIDD blocks. With several cards
    each evaluates its shard and the sums are gathered, so every card returns
    the same means of the whole set. Returns ``{"psnr", "ssim", "count"}``.
    """
    if progress is None:
        progress = sys.stderr.isatty()
    sums = {n: 0.0 for n in names}
    count = 0
    for noisy, clean in _progress(loader, len(loader), desc, progress):
        noisy = np.asarray(noisy, dtype=np.float32)
        clean = np.asarray(clean, dtype=np.float32)
        restored = noisy if runner is None else runner(noisy)
        restored = np.clip(restored, 0.0, 1.0)
        for r, c in zip(restored, clean):
            for k, v in sample_metrics(r.transpose(1, 2, 0), c.transpose(1, 2, 0), names).items():
                sums[k] += v
            count += 1
    totals = all_reduce_sum([sums[n] for n in names] + [count])
    count = int(round(totals[-1]))
    result = {n: (totals[i] / count if count else float("nan")) for i, n in enumerate(names)}
    result["count"] = count
    return result


def evaluate_model(model, loader, names=("psnr", "ssim"), ensemble=False, amp_level=None,
                   progress=None):
    """:func:`evaluate` of a dygraph model (``ensemble``: x8 flips/rotations)."""
    runner = DygraphRunner(model, amp_level)
    if ensemble:
        runner = SelfEnsemble(runner)
    was_training = model.training
    try:
        return evaluate(runner, loader, names, progress)
    finally:
        if was_training:
            model.train()


def evaluate_config(cfg, ensemble=False, with_input=False, progress=None):
    """Evaluate ``Global.pretrained_model`` on ``DataLoader.Eval`` of a config.

    Returns a JSON-ready dict: the means, the image count, what was
    evaluated, and with ``with_input`` the metrics of the noisy input too.
    """
    from ..config import amp_level
    from ..data.builder import build_eval_loader
    from . import env
    from .predictor import load_model

    g = cfg["Global"]
    env.set_device(g["device"])
    rank, world = env.init_distributed()
    section = cfg["DataLoader"]["Eval"]
    if section["dataset"]["name"] == "DNDBenchmark":
        raise ValueError("DND has no ground truth: use denoise_dnd")
    # The data first: a missing dataset is reported before a large model is built.
    dataset, loader = build_eval_loader(section, rank, world)
    model = load_model(cfg)
    names = cfg["Metric"]["names"]
    result = evaluate_model(model, loader, names, ensemble=ensemble, amp_level=amp_level(cfg),
                            progress=progress if rank == 0 else False)
    report = {
        "config": g.get("config_file"),
        "weights": g["pretrained_model"],
        "dataset": dict(section["dataset"]),
        "ensemble": bool(ensemble),
        "images": result["count"],
        "psnr": result.get("psnr"),
        "ssim": result.get("ssim"),
        "ssim_variant": "skimage structural_similarity, gaussian_weights, sigma 1.5, "
                        "use_sample_covariance False, data_range 1",
    }
    if with_input:
        base = evaluate(None, loader, names, progress=False)
        report["input_psnr"] = base.get("psnr")
        report["input_ssim"] = base.get("ssim")
    return report


def denoise_dnd(cfg, save_dir, ensemble=False, progress=None):
    """Denoise the DND crops of ``DataLoader.Eval`` and write the server submission.

    Returns the folder ``save_dir/srgb_results_for_server_submission``.
    """
    from ..config import amp_level
    from ..data.builder import build_eval_loader
    from ..data.dnd import bundle_dnd_submission
    from . import env
    from .predictor import load_model

    g = cfg["Global"]
    env.set_device(g["device"])
    if env.world_size() > 1:
        raise ValueError("the DND submission is written by one process; run without launch")
    dataset, loader = build_eval_loader(cfg["DataLoader"]["Eval"])
    runner = DygraphRunner(load_model(cfg), amp_level(cfg))
    if ensemble:
        runner = SelfEnsemble(runner)
    per_image = dataset.boxes.shape[1]
    if progress is None:
        progress = sys.stderr.isatty()
    crops = {}
    for noisy, keys in _progress(loader, len(loader), "DND", progress):
        restored = np.clip(runner(np.asarray(noisy, dtype=np.float32)), 0.0, 1.0)
        for out, k in zip(restored, np.asarray(keys).reshape(-1)):
            crops[divmod(int(k), per_image)] = out.transpose(1, 2, 0)
    return bundle_dnd_submission(crops, save_dir, per_image)

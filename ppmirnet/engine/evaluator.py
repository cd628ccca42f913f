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

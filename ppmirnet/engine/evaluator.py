"""Evaluation: mean PSNR/SSIM over a paired dataset under the task's protocol, gathered across cards."""

import sys

import numpy as np

from .. import metrics
from .env import all_reduce_sum
from .dygraph import DygraphRunner, SelfEnsemble


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def sample_metrics(restored, clean, names=("psnr", "ssim"), protocol=None):
    """Metrics of one restored HxWx3 image against its clean version (both in [0, 1]).

    ``protocol``: the config's ``Metric`` section (or its protocol keys);
    None measures RGB floats, full image, as for denoising.
    """
    return metrics.image_metrics(restored, clean, names, **metrics.protocol_of(protocol))


def _budgeted(runner, budget, log, image_name):
    """``runner`` run whole on a batch whose predicted peak fits ``budget``, else in tiles, said in ``log``."""
    import copy

    from .. import memory, processing

    # Made now, not at the start: the evaluating process already holds its model
    # and data, which is what the network's memory adds to (memory.model_for does
    # so for the table's engines; a runner's own model is held to it here).
    model = copy.copy(memory.model_for(runner))
    if model is None:
        return runner
    model.fixed = max(model.fixed, memory.current_rss())
    position = [0]

    def run(batch):
        n, c, h, w = batch.shape
        first = position[0]
        position[0] += n
        name = image_name(first) if n == 1 else f"{image_name(first)} to {image_name(first + n - 1)}"
        how = memory.plan(model, budget, h, w, c, n, name=name)
        if not how.tile:
            return runner(batch)
        log(f"[Eval] {name} ({w}x{h}): restored {how.describe()}")
        return processing.run_tiled(runner, batch, how.tile, min(32, how.tile // 4))

    return run


def evaluate(runner, loader, names=("psnr", "ssim"), progress=None, desc="eval", protocol=None,
             on_image=None, should_stop=None, budget=None, log=print, image_name=None):
    """Mean metrics of ``runner`` (or of the input, if ``runner`` is None) over ``loader``.

    Each image is compared alone after clamping to [0, 1], under the
    ``protocol`` of :func:`sample_metrics`, and the per-image values are
    averaged, as the paper does for the 1280 SIDD blocks. With several cards
    each evaluates its shard and the sums are gathered, so every card returns
    the same means of the whole set. ``on_image(index, restored_hwc)`` sees
    every restored image (to save it). Returns ``{"psnr", "ssim", "count"}``,
    or None when ``should_stop(batch_index)``, asked before each batch, says
    to abandon the evaluation (a signal stopping the training).

    With ``budget`` (a :class:`ppmirnet.memory.Budget`) images whose predicted
    peak fits it are restored whole, as without it (the same scores), the
    others in the largest tiles that fit, each said in ``log`` with the
    image (``image_name(position)``, default ``image <position>``) and the tile size.
    """
    if progress is None:
        progress = sys.stderr.isatty()
    if budget is not None and runner is not None:
        runner = _budgeted(runner, budget, log, image_name or "image {}".format)
    sums = {n: 0.0 for n in names}
    count = 0
    # Rounded once here, so a saved image is exactly the one measured.
    quantize = metrics.protocol_of(protocol)["quantize"]
    for i, (noisy, clean) in enumerate(_progress(loader, len(loader), desc, progress)):
        if should_stop is not None and should_stop(i):
            return None
        noisy = np.asarray(noisy, dtype=np.float32)
        clean = np.asarray(clean, dtype=np.float32)
        restored = noisy if runner is None else runner(noisy)
        restored = np.clip(restored, 0.0, 1.0)
        for r, c in zip(restored, clean):
            r = r.transpose(1, 2, 0)
            if quantize:
                r = metrics.quantize_u8(r)
            if on_image is not None:
                on_image(count, r)
            for k, v in sample_metrics(r, c.transpose(1, 2, 0), names, protocol).items():
                sums[k] += v
            count += 1
    totals = all_reduce_sum([sums[n] for n in names] + [count])
    count = int(round(totals[-1]))
    result = {n: (totals[i] / count if count else float("nan")) for i, n in enumerate(names)}
    result["count"] = count
    return result


def evaluate_model(model, loader, names=("psnr", "ssim"), ensemble=False, amp_level=None,
                   progress=None, protocol=None, on_image=None, should_stop=None, budget=None,
                   log=print, image_name=None):
    """:func:`evaluate` of a dygraph model (``ensemble``: x8 flips/rotations; ``budget``: see there)."""
    runner = DygraphRunner(model, amp_level)
    if ensemble:
        runner = SelfEnsemble(runner)
    was_training = model.training
    try:
        return evaluate(runner, loader, names, progress, protocol=protocol, on_image=on_image,
                        should_stop=should_stop, budget=budget, log=log, image_name=image_name)
    finally:
        if was_training:
            model.train()


def evaluate_config(cfg, ensemble=False, with_input=False, progress=None, save_images=None):
    """Evaluate ``Global.pretrained_model`` on ``DataLoader.Eval`` of a config.

    Metrics follow the config's ``Metric`` protocol (:mod:`ppmirnet.metrics`).
    ``save_images``: a folder where every restored image is written as 8-bit
    PNG under its input's name. Returns a JSON-ready dict: the means, the
    image count, what was evaluated and how, and with ``with_input`` the
    metrics of the input too.
    """
    from ..config import amp_level
    from ..data.builder import build_eval_loader
    from . import env
    from .dygraph import load_model

    from .. import memory

    global_cfg = cfg["Global"]
    budget = memory.make_budget(global_cfg.get("max_memory"), global_cfg["device"], "Global.max_memory")
    env.set_device(global_cfg["device"], global_cfg["cpu_threads"])
    rank, world = env.init_distributed()
    section = cfg["DataLoader"]["Eval"]
    if section["dataset"]["name"] == "DNDBenchmark":
        raise ValueError("DND has no ground truth: use denoise_dnd")
    # The data first: a missing dataset is reported before a large model is built.
    dataset, loader = build_eval_loader(section, rank, world)
    model = load_model(cfg)
    names = cfg["Metric"]["names"]
    protocol = metrics.protocol_of(cfg["Metric"])
    on_image = None
    if save_images:
        on_image = _image_saver(save_images, dataset, loader.batch_sampler.indices)
    result = evaluate_model(model, loader, names, ensemble=ensemble, amp_level=amp_level(cfg),
                            progress=progress if rank == 0 else False, protocol=protocol,
                            on_image=on_image, budget=budget,
                            image_name=image_namer(dataset, loader.batch_sampler.indices))
    report = {
        "config": global_cfg.get("config_file"),
        "weights": global_cfg["pretrained_model"],
        "dataset": dict(section["dataset"]),
        "ensemble": bool(ensemble),
        "images": result["count"],
        "psnr": result.get("psnr"),
        "ssim": result.get("ssim"),
        "protocol": dict(protocol, description=metrics.describe_protocol(protocol)),
    }
    if save_images:
        report["saved_images"] = save_images
    if with_input:
        base = evaluate(None, loader, names, progress=False, protocol=protocol)
        report["input_psnr"] = base.get("psnr")
        report["input_ssim"] = base.get("ssim")
    return report


def image_namer(dataset, indices):
    """``position -> name`` of the evaluated images: the input's file name where the dataset has one."""
    names = getattr(dataset, "names", None)

    def name(position):
        index = indices[position] if position < len(indices) else position
        return names[index % len(names)] if names else f"image {index}"

    return name


def _image_saver(folder, dataset, indices):
    """``on_image`` for :func:`evaluate`: write restored images as PNG named after the inputs."""
    import os

    from .. import processing

    os.makedirs(folder, exist_ok=True)
    names = getattr(dataset, "names", None)

    def save(position, rgb):
        index = indices[position]
        stem = os.path.splitext(names[index % len(names)])[0] if names else f"{index:05d}"
        info = processing.ImageInfo(8, 3, None, rgb.shape[0], rgb.shape[1])
        processing.write_image(os.path.join(folder, stem + ".png"), rgb, info)

    return save


def denoise_dnd(cfg, save_dir, ensemble=False, progress=None):
    """Denoise the DND crops of ``DataLoader.Eval`` and write the server submission.

    Returns the folder ``save_dir/srgb_results_for_server_submission``.
    """
    from ..config import amp_level
    from ..data.builder import build_eval_loader
    from ..data.dnd import bundle_dnd_submission
    from . import env
    from .dygraph import load_model

    global_cfg = cfg["Global"]
    env.set_device(global_cfg["device"], global_cfg["cpu_threads"])
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

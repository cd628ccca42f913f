"""Restore a list of image files with any runner, batching images of equal size.

Used by ``deploy/inference/infer.py`` (Paddle Inference) and
``deploy/onnx/infer.py`` (onnxruntime); all image handling goes through
:mod:`ppmirnet.processing`.
"""

import os
import sys
import time

import numpy as np

from .. import processing
from ..errors import UserError


class StageTimer:
    """Accumulates wall time of the preprocess, inference and postprocess stages.

    Also counts the images and keeps their distinct sizes (``shapes``, HxW).
    """

    STAGES = ("preprocess", "inference", "postprocess")

    def __init__(self):
        self.seconds = dict.fromkeys(self.STAGES, 0.0)
        self.images = 0
        self.shapes = []

    def add(self, stage, seconds):
        self.seconds[stage] += seconds

    def ms_per_image(self, stage):
        return 1000.0 * self.seconds[stage] / max(self.images, 1)

    @property
    def total_seconds(self):
        return sum(self.seconds.values())


def plan_outputs(inputs, output_dir):
    """Map every input file to ``<output_dir>/<stem>.png``.

    Raises :class:`UserError` when two inputs would write the same output
    (``a.jpg`` and ``a.png``) or an output would overwrite its own input.
    """
    outputs, seen = [], {}
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(output_dir, stem + ".png")
        if out in seen:
            raise UserError(f"{seen[out]} and {path} would both be written to {out}; rename one")
        if os.path.abspath(out) == os.path.abspath(path):
            raise UserError(f"output {out} would overwrite its input; choose another --output_dir")
        seen[out] = path
        outputs.append(out)
    return outputs


def _batches(paths, batch_size, timer):
    """Read ``paths`` lazily; yield ``(indices, images)`` of consecutive same-size images.

    A batch closes at ``batch_size`` images or when the next image has
    another size, so memory stays bounded by one batch whatever the folder.
    """
    idx, batch = [], []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        item = processing.read_image(path)
        timer.add("preprocess", time.perf_counter() - start)
        if batch and (len(batch) == batch_size or item[0].shape != batch[0][0].shape):
            yield idx, batch
            idx, batch = [], []
        idx.append(i)
        batch.append(item)
    if batch:
        yield idx, batch


def restore_files(runner, inputs, output_dir, batch_size=1, tile=0, tile_overlap=32,
                  timer=None, progress=None):
    """Restore image files and write ``<output_dir>/<stem>.png`` for each.

    Consecutive images of the same size are batched together (up to
    ``batch_size``; sort inputs by size for full batches); ``tile > 0``
    restores large images tile by tile. Outputs keep the input's size, bit
    depth and channel layout, and each is written atomically. Returns the
    written paths in input order.

    Args:
        runner: callable float32 NCHW -> float32 NCHW (a predictor).
        inputs (list[str]): image files.
        output_dir (str): created if missing.
        batch_size (int): images per runner call.
        tile (int): tile size (a multiple of 8), 0 to run whole images.
        tile_overlap (int): overlap between tiles.
        timer (StageTimer): receives per-stage times if given.
        progress: callable ``(n)`` told each time ``n`` images are done.
    """
    if batch_size < 1:
        raise UserError(f"--batch_size must be >= 1, got {batch_size}")
    if tile < 0 or tile % 8:
        raise UserError(f"--tile must be 0 or a positive multiple of 8, got {tile}")
    if tile and not 0 <= tile_overlap < tile:
        raise UserError(f"--tile_overlap must be in [0, --tile), got {tile_overlap}")
    timer = timer or StageTimer()
    outputs = plan_outputs(inputs, output_dir)
    os.makedirs(output_dir, exist_ok=True)
    for idx, images in _batches(inputs, batch_size, timer):
        start = time.perf_counter()
        batch = processing.to_batch([rgb for rgb, _ in images])
        timer.add("preprocess", time.perf_counter() - start)

        start = time.perf_counter()
        if tile:
            restored = processing.run_tiled(runner, batch, tile, tile_overlap)
        else:
            restored = processing.run_padded(runner, batch)
        timer.add("inference", time.perf_counter() - start)

        start = time.perf_counter()
        for i, (_, info), rgb in zip(idx, images, processing.from_batch(restored)):
            processing.write_image(outputs[i], np.clip(rgb, 0.0, 1.0), info)
        timer.add("postprocess", time.perf_counter() - start)
        timer.images += len(idx)
        if batch.shape[2:] not in timer.shapes:
            timer.shapes.append(batch.shape[2:])
        if progress:
            progress(len(idx))
    return outputs


def _warm_up(runner, first_image, tile, batch_size):
    """Run the first image (or its first tile), as a full batch, once and untimed.

    oneDNN and onnxruntime prepare their kernels on the first run of each
    input shape; timing that would misstate the steady-state speed.
    """
    batch = processing.to_batch([processing.read_image(first_image)[0]] * batch_size)
    if tile:
        batch = batch[:, :, :tile, :tile]
    processing.run_padded(runner, batch)


def restore_and_report(runner, inputs, output_dir, batch_size=1, tile=0, tile_overlap=32,
                       benchmark=False, save_log_path=None, gpu_id=0, model_name="MIRNet", out=None):
    """What ``deploy/*/infer.py`` do: restore ``inputs``, print a summary, and the report.

    With ``benchmark`` the runner is warmed up on the first image, then the
    AutoLog-style report (:mod:`.report`) is printed and, if
    ``save_log_path`` is given, written there. ``runner`` must have a
    ``describe()`` method (both predictors do). Returns the :class:`StageTimer`.
    """
    from .report import build_report, format_report, save_report

    out = out or sys.stdout
    plan_outputs(inputs, output_dir)
    if benchmark:
        _warm_up(runner, inputs[0], tile, batch_size)
    timer = StageTimer()
    bar = None
    if sys.stderr.isatty() and len(inputs) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(inputs), unit="img", file=sys.stderr)
    start = time.perf_counter()
    try:
        restore_files(runner, inputs, output_dir, batch_size, tile, tile_overlap, timer=timer,
                      progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    engine = runner.describe()
    print(f"restored {timer.images} image(s) into {output_dir} in {time.perf_counter() - start:.3f} s "
          f"({engine['runtime_device']}, {engine['program']})", file=out)
    if benchmark:
        text = format_report(build_report(engine, timer, model_name, batch_size, timer.shapes,
                                          tile=tile, gpu_id=gpu_id))
        print(text, end="", file=out)
        if save_log_path:
            save_report(text, save_log_path)
    return timer

"""Restoring image files: the one loop of ``tools/predict.py`` and ``deploy/*/infer.py``.

Any runner (dygraph, Paddle Inference, onnxruntime) is driven over a list of
files with the same rules: outputs are ``<output_dir>/<stem>.png``, never an
input file nor beside the inputs; every readable image is restored, those
that fail are listed at the end; all image handling goes through
:mod:`ppmirnet.processing`. An input is an image file, or for the dual-pixel
MIRNet-v2 a ``(left view, right view)`` pair of files (named after the left
one).
"""

import os
import sys
import time

from . import processing
from .errors import UserError
from .utils.io import check_output_dir
from .utils.run_folder import archive_earlier


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


def _first(item):
    """The file an input is named after: the image, or a pair's left view."""
    return item if isinstance(item, (str, os.PathLike)) else item[0]


def _files(item):
    return [item] if isinstance(item, (str, os.PathLike)) else list(item)


def runner_channels(runner):
    """The input channels a runner expects (``in_channels``; 3 when it does not say)."""
    return getattr(runner, "in_channels", None) or 3


def check_inputs_fit(runner, inputs, right_flag="the right views"):
    """Refuse single images for a dual-pixel model and pairs for a 3-channel one, before any work."""
    channels = runner_channels(runner)
    pairs = bool(inputs) and not isinstance(inputs[0], (str, os.PathLike))
    if channels == 6 and not pairs:
        raise UserError(f"this model restores dual-pixel pairs (6 input channels): give the left "
                        f"views as the input and {right_flag} too")
    if channels != 6 and pairs:
        raise UserError(f"this model takes {channels}-channel images, not dual-pixel pairs: "
                        f"leave out {right_flag}")


class FailedImages(UserError):
    """Some images could not be restored; the others were written.

    Attributes:
        failures (list): ``(path, reason)`` of each image that failed.
        written (list): the outputs that were written.
    """

    def __init__(self, failures, written, total):
        lines = [reason if path in reason else f"{path}: {reason}" for path, reason in failures]
        super().__init__(f"{len(failures)} of {total} image(s) could not be restored "
                         f"({len(written)} written):\n  " + "\n  ".join(lines))
        self.failures = failures
        self.written = written


def check_settings(batch_size=1, tile=0, tile_overlap=32):
    """Raise :class:`UserError` for a batch size or tiling that cannot run.

    ``tile`` is 0 (whole images) or a positive multiple of 8 larger than
    ``tile_overlap``; every front end accepts the same values.
    """
    if batch_size < 1:
        raise UserError(f"--batch_size must be >= 1, got {batch_size}")
    if tile < 0 or tile % 8:
        raise UserError(f"--tile must be 0 or a positive multiple of 8, got {tile}")
    if tile and not 0 <= tile_overlap < tile:
        raise UserError(f"--tile_overlap must be in [0, --tile), got {tile_overlap}")


def plan_outputs(inputs, output_dir):
    """Map every input file to ``<output_dir>/<stem>.png``.

    Raises :class:`UserError` when two inputs would write the same output
    (``a.jpg`` and ``a.png``), an output would overwrite an input, or
    ``output_dir`` is the folder of an input (results would mix with, or
    replace, the originals). An ``output_dir`` that cannot be a folder (a
    file in its place or above it, a read-only parent) is refused too; the
    folder itself is made with the first file written.
    """
    check_output_dir(output_dir)
    outputs, seen = [], {}
    real_inputs = {os.path.realpath(p): p for item in inputs for p in _files(item)}
    real_dir = os.path.realpath(output_dir)
    for item in inputs:
        path = _first(item)
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(output_dir, stem + ".png")
        if out in seen:
            raise UserError(f"{seen[out]} and {path} would both be written to {out}; rename one")
        if os.path.realpath(out) in real_inputs:
            raise UserError(f"output {out} would overwrite its input "
                            f"{real_inputs[os.path.realpath(out)]}; choose another output folder")
        for file in _files(item):
            if os.path.realpath(os.path.dirname(os.path.abspath(file))) == real_dir:
                raise UserError(f"the output folder {output_dir} is the folder of the input "
                                f"{file}; choose another output folder")
        seen[out] = path
        outputs.append(out)
    return outputs


def _batches(paths, batch_size, timer, failures):
    """Read ``paths`` lazily; yield ``(indices, images)`` of consecutive same-size images.

    A batch closes at ``batch_size`` images or when the next image has
    another size, so memory stays bounded by one batch whatever the folder.
    An unreadable image is added to ``failures`` and skipped.
    """
    idx, batch = [], []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        try:
            item = processing.read_input(path)
        except UserError as err:
            failures.append((_first(path), str(err)))
            continue
        finally:
            timer.add("preprocess", time.perf_counter() - start)
        if batch and (len(batch) == batch_size or item[0].shape != shape):
            yield idx, batch
            idx, batch = [], []
        idx.append(i)
        batch.append(item)
        shape = item[0].shape
        item = None  # the consumer may drop the pixels of a yielded batch
    if batch:
        yield idx, batch


def _bars_wanted(progress):
    """Whether ``progress`` (a callable, False, or None) asks for progress bars: None on a terminal."""
    return progress is None and sys.stderr.isatty()


def _progress_bar(progress, total):
    """``(update, close)`` for ``progress``: a callable, False, or None (a bar on a terminal)."""
    if callable(progress):
        return progress, None
    if _bars_wanted(progress) and total > 1:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
        return bar.update, bar.close
    return None, None


class _TileBar:
    """A progress bar over one image's tiles: a 12-megapixel photo takes minutes on a CPU.

    Called as ``bar(done, total)`` (the ``progress`` of
    :func:`ppmirnet.processing.run_tiled`); the bar appears with the first
    tile and is removed by :meth:`close`.
    """

    def __init__(self, name):
        self.name, self.bar = name, None

    def __call__(self, done, total):
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit="tile", leave=False, file=sys.stderr,
                            dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def auto_tile(shape, max_size, tile):
    """The tile size for an input of spatial ``shape`` (H, W) under TensorRT's ``max_size``.

    ``tile`` when one was asked for; otherwise 0 (whole image) if the padded
    image fits ``max_size``, else ``max_size`` rounded down to a multiple of 8:
    TensorRT cannot run an input beyond the range its engine was built for.
    A runner says its limit with a ``max_input_size`` attribute (None: any).
    """
    if tile or max_size is None:
        return tile
    padded = [-(-int(n) // 8) * 8 for n in shape]
    return 0 if max(padded) <= max_size else max_size // 8 * 8


def _stored_bytes_per_pixel(path):
    """Bytes per pixel of a decoded image file, from its header (16-bit samples assumed: at most)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return 2 * len(img.getbands())
    except Exception:  # unreadable files fail, and are reported, when they are read
        return 6


def check_budget(inputs, budget, model=None, batch_size=1, tile_overlap=32):
    """Refuse, before any work, inputs that cannot be restored within ``budget`` (one line, numbers).

    From the image headers: without ``model`` only the float32 input and output and the
    stored pixels are counted (:func:`ppmirnet.memory.check_minimum`); with it the whole
    plan (:func:`ppmirnet.memory.plan`). Unreadable files are left to the restore loop.
    """
    from . import memory

    if budget is None:
        return
    refused = []
    for item in inputs:
        try:
            width, height = processing.image_size(_first(item))
        except UserError:
            continue
        files = _files(item)
        channels = 3 * len(files)
        stored = sum(_stored_bytes_per_pixel(f) for f in files)
        try:
            memory.check_minimum(height, width, budget, channels, stored, name=_first(item))
            if model is not None:
                memory.plan(model, budget, height, width, channels, min(batch_size, len(inputs)),
                            tile_overlap, name=_first(item))
        except UserError as err:
            refused.append(str(err))
    if refused:
        raise UserError(refused[0] + (f" (nor can {len(refused) - 1} more)" if len(refused) > 1 else ""))


def restore_files(runner, inputs, output_dir, batch_size=1, tile=0, tile_overlap=32,
                  timer=None, progress=None, log=None, budget=None):
    """Restore image files and write ``<output_dir>/<stem>.png`` for each.

    Consecutive images of the same size are batched together (up to
    ``batch_size``; sort inputs by size for full batches); ``tile > 0``
    restores large images tile by tile. Outputs keep the input's size, bit
    depth and channel layout, and each is written atomically. Settings and
    outputs are checked (:func:`check_settings`, :func:`plan_outputs`)
    before anything is read. An image that cannot be read or restored does
    not stop the others: after the last one, :class:`FailedImages` lists
    those that failed with their reasons.

    Args:
        runner: callable float32 NCHW -> float32 NCHW (a predictor).
        inputs (list): image files, or ``(left, right)`` pairs of dual-pixel
            views for a 6-channel model (:func:`ppmirnet.processing.list_pairs`).
        output_dir (str): created when the first image is written.
        batch_size (int): images per runner call.
        tile (int): tile size (a multiple of 8), 0 (or None) to run whole images.
        tile_overlap (int): overlap between tiles.
        timer (StageTimer): receives per-stage times if given.
        progress: callable ``(n)`` told each time ``n`` images are done;
            None: a progress bar when stderr is a terminal (and one over the
            tiles of a tiled image); False: nothing.
        log: callable given one line per written image, if set.
        budget (ppmirnet.memory.Budget): with ``tile`` 0, images whose predicted peak
            exceeds it are restored in the largest tiles that fit (a line on stderr
            says so); images that cannot fit are refused before any work. None:
            whole images.

    Returns:
        list[str]: the written paths, in input order.
    """
    tile = tile or 0
    check_settings(batch_size, tile, tile_overlap)
    check_inputs_fit(runner, inputs)
    timer = timer or StageTimer()
    outputs = plan_outputs(inputs, output_dir)
    model = None
    if budget is not None and not tile:
        from . import memory

        model = memory.model_for(runner)
        check_budget(inputs, budget, model, batch_size, tile_overlap)
    # Results of an earlier run that these would replace are moved aside, never overwritten.
    archive_earlier(output_dir, [os.path.basename(o) for o in outputs],
                    log=log or (lambda line: print(line, file=sys.stderr)),
                    keep=[f for item in inputs for f in _files(item)])
    failures, written = [], []
    update, close = _progress_bar(progress, len(inputs))
    try:
        for idx, images in _batches(inputs, batch_size, timer, failures):
            start = time.perf_counter()
            batch = processing.to_batch([rgb for rgb, _ in images])
            # Only the batch is kept: a large photo is held once, not twice.
            images[:] = [(None, info) for _, info in images]
            timer.add("preprocess", time.perf_counter() - start)

            start = time.perf_counter()
            batch_tile = auto_tile(batch.shape[2:], getattr(runner, "max_input_size", None), tile)
            overlap = tile_overlap
            if batch_tile != tile:
                overlap = min(tile_overlap, batch_tile // 4)
                print(f"{os.path.basename(_first(inputs[idx[0]]))}: {batch.shape[2]}x{batch.shape[3]} is "
                      f"larger than TensorRT's --trt_max_size={runner.max_input_size}: restoring "
                      f"it in tiles of {batch_tile}", file=sys.stderr)
            if model is not None and not batch_tile:
                from . import memory

                how = memory.plan(model, budget, batch.shape[2], batch.shape[3], batch.shape[1],
                                  batch.shape[0], tile_overlap, name=_first(inputs[idx[0]]))
                if how.tile:
                    batch_tile, overlap = how.tile, min(tile_overlap, how.tile // 4)
                    print(f"{os.path.basename(_first(inputs[idx[0]]))}: {batch.shape[3]}x{batch.shape[2]} "
                          f"restored {how.describe()}", file=sys.stderr)
            shape = batch.shape
            tiles = _TileBar(os.path.basename(_first(inputs[idx[0]]))) \
                if batch_tile and _bars_wanted(progress) else None
            try:
                if batch_tile:
                    restored = processing.run_tiled(runner, batch, batch_tile, overlap, progress=tiles)
                else:
                    restored = processing.run_whole(runner, batch)
            except UserError as err:  # e.g. too small
                failures.extend((_first(inputs[i]), str(err)) for i in idx)
                continue
            finally:
                if tiles is not None:
                    tiles.close()
            del batch
            seconds = time.perf_counter() - start
            timer.add("inference", seconds)

            start = time.perf_counter()
            restored = processing.from_batch(restored)
            for i, (_, info) in zip(idx, images):
                rgb = restored.pop(0)  # each image freed once written
                try:
                    # Unclipped: an infinite value is refused there, not written as white.
                    processing.write_image(outputs[i], rgb, info)
                except UserError as err:
                    failures.append((_first(inputs[i]), str(err)))
                    continue
                written.append(outputs[i])
                if log:
                    log(f"{_first(inputs[i])} -> {outputs[i]} ({info.width}x{info.height}, "
                        f"{info.bit_depth}-bit, {info.channels} channel(s), {seconds / len(idx):.2f} s)")
            timer.add("postprocess", time.perf_counter() - start)
            timer.images += len(idx)
            if shape[2:] not in timer.shapes:
                timer.shapes.append(shape[2:])
            if update:
                update(len(idx))
    finally:
        if close:
            close()
    if failures:
        order = {_first(p): n for n, p in enumerate(inputs)}
        raise FailedImages(sorted(failures, key=lambda f: order[f[0]]), written, len(inputs))
    return written

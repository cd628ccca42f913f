"""What ``deploy/inference/infer.py`` and ``deploy/onnx/infer.py`` do around the restore loop.

Warm-up, the summary line and the AutoLog-style report; the files
themselves go through :func:`ppmirnet.files.restore_files`.
"""

import sys
import time

from .. import processing
from ..errors import UserError
from ..files import FailedImages, StageTimer, auto_tile, check_settings, plan_outputs, restore_files


def _warm_up(runner, inputs, tile, batch_size):
    """Run the first image that can run (or its first tile), as a full batch, once and untimed.

    oneDNN and onnxruntime prepare their kernels on the first run of each
    input shape; timing that would misstate the steady-state speed. Images
    that fail here fail again, and are reported, in the timed run.
    """
    for path in inputs:
        try:
            batch = processing.to_batch([processing.read_input(path)[0]] * batch_size)
            tile = auto_tile(batch.shape[2:], getattr(runner, "max_input_size", None), tile)
            if tile:
                batch = batch[:, :, :tile, :tile]
            processing.run_whole(runner, batch)
            return
        except UserError:
            continue


def restore_and_report(runner, inputs, output_dir, batch_size=1, tile=0, tile_overlap=32,
                       benchmark=False, save_log_path=None, gpu_id=0, model_name="MIRNet", out=None,
                       budget=None):
    """What ``deploy/*/infer.py`` do: restore ``inputs``, print a summary, and the report.

    With ``benchmark`` the runner is warmed up on the first image, then the
    AutoLog-style report (:mod:`.report`) is printed and, if
    ``save_log_path`` is given, written there. ``runner`` must have a
    ``describe()`` method (both predictors do). ``budget``
    (:class:`ppmirnet.memory.Budget`): see :func:`restore_files`. Returns the :class:`StageTimer`.
    """
    from .report import build_report, format_report, save_report

    out = out or sys.stdout
    check_settings(batch_size, tile, tile_overlap)
    plan_outputs(inputs, output_dir)
    if benchmark:
        _warm_up(runner, inputs, tile, batch_size)
    timer = StageTimer()
    failed = None
    start = time.perf_counter()
    try:
        restore_files(runner, inputs, output_dir, batch_size, tile, tile_overlap, timer=timer, budget=budget)
    except FailedImages as err:
        failed = err
    engine = runner.describe()
    print(f"restored {timer.images} image(s) into {output_dir} in {time.perf_counter() - start:.3f} s "
          f"({engine['runtime_device']}, {engine['program']})", file=out)
    if benchmark:
        text = format_report(build_report(engine, timer, model_name, batch_size, timer.shapes,
                                          tile=tile, gpu_id=gpu_id))
        print(text, end="", file=out)
        if save_log_path:
            save_report(text, save_log_path)
    if failed:
        raise failed
    return timer

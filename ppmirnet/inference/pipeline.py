"""What the ``deploy/`` front ends (Paddle Inference, ONNX, OpenVINO) do around the restore loop.

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


def add_front_end_args(parser, default_output):
    """The image, output, tiling, memory-budget and report flags every inference front end shares."""
    from ..cli import str2bool

    parser.add_argument("--image_dir", required=True, help="an image file or a folder of images")
    parser.add_argument("--image_dir_right", default=None,
                        help="dual-pixel models: the right views (a file, or a folder with the file "
                             "names of --image_dir)")
    parser.add_argument("--output_dir", default=default_output, help="where the restored PNGs go")
    parser.add_argument("--cpu_threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=1, help="images of equal size per predictor call")
    parser.add_argument("--tile", type=int, default=0,
                        help="tile size (multiple of 8) for large images; 0 = whole image")
    parser.add_argument("--tile_overlap", type=int, default=32)
    parser.add_argument("--max_memory", default=None, metavar="SIZE",
                        help="memory budget, e.g. 3G or 512M: images that would need more are restored in "
                             "the largest tiles that fit (default: half the memory available at start, at most 3G; "
                             "ignored with --tile)")
    parser.add_argument("--benchmark", type=str2bool, default=False, help="print the AutoLog-style timing report")
    parser.add_argument("--save_log_path", default=None, help="also write the benchmark report here")


def run_front_end(args, make_predictor, device="cpu", gpu_id=0):
    """Restore as ``args`` (of :func:`add_front_end_args`) say with ``make_predictor()``.

    Inputs, settings, outputs and the memory budget (of ``device``) are checked
    before the predictor is built, so a mistake costs no model loading.
    """
    from .. import memory
    from ..files import check_budget, check_inputs_fit

    inputs = processing.list_inputs(args.image_dir, args.image_dir_right)
    check_settings(args.batch_size, args.tile, args.tile_overlap)
    plan_outputs(inputs, args.output_dir)
    budget = None if args.tile else memory.make_budget(args.max_memory, device, limit=memory.PHOTO_LIMIT)
    check_budget(inputs, budget)
    predictor = make_predictor()
    check_inputs_fit(predictor, inputs, "the right views with --image_dir_right")
    restore_and_report(predictor, inputs, args.output_dir, args.batch_size, args.tile, args.tile_overlap,
                       benchmark=args.benchmark, save_log_path=args.save_log_path, gpu_id=gpu_id,
                       budget=budget)

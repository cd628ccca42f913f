r"""Restore images with an exported MIRNet or MIRNet-v2 through Paddle Inference.
Denoising, super-resolution, enhancement or defocus deblurring: whatever task
the model was trained for.

    ppmirnet infer --model_dir=inference --image_dir=noisy/ --output_dir=out/
    python deploy/inference/infer.py --model_dir=inference --image_dir=noisy/ --output_dir=out/

Writes ``<output_dir>/<stem>.png`` per input, at the input's size and bit
depth. A dual-pixel MIRNet-v2 takes the left views as ``--image_dir`` and the
right views as ``--image_dir_right``. ``--benchmark=True`` prints an AutoLog-style timing report (and
writes it to ``--save_log_path``). Every flag accepts ``--flag=value``.
"""

import os

from ..cli import make_parser, str2bool


def _auto_or_bool(value):
    return None if str(value).strip().lower() == "auto" else str2bool(value)


def parse_args(argv=None, prog=None):
    p = make_parser(__doc__, prog)
    p.add_argument("--model_dir", required=True, help="folder with inference.json/.pdmodel + inference.pdiparams")
    p.add_argument("--image_dir", required=True, help="an image file or a folder of images")
    p.add_argument("--image_dir_right", default=None,
                   help="dual-pixel models: the right views (a file, or a folder with the file "
                        "names of --image_dir)")
    p.add_argument("--output_dir", default="output/inference", help="where the restored PNGs go")
    p.add_argument("--use_gpu", type=_auto_or_bool, default=None,
                   help="True, False or auto (default): the GPU when this PaddlePaddle sees one")
    p.add_argument("--gpu_id", type=int, default=0)
    p.add_argument("--gpu_mem", type=int, default=500, help="initial GPU memory pool, MB")
    p.add_argument("--enable_mkldnn", type=str2bool, default=True, help="oneDNN kernels on CPU")
    p.add_argument("--cpu_threads", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=1, help="images of equal size per predictor call")
    p.add_argument("--use_tensorrt", type=str2bool, default=False)
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    p.add_argument("--trt_min_size", type=int, default=8, help="TensorRT: smallest padded H/W")
    p.add_argument("--trt_opt_size", type=int, default=256, help="TensorRT: H/W tuned for")
    p.add_argument("--trt_max_size", type=int, default=1024, help="TensorRT: largest padded H/W")
    p.add_argument("--trt_cache_dir", default=None, help="TensorRT engine cache (default <model_dir>/_trt_cache)")
    p.add_argument("--shape_range_file", default=None, help="collected TensorRT shape-range file to use")
    p.add_argument("--legacy_program", type=_auto_or_bool, default=None,
                   help="True: load inference.pdmodel, False: inference.json, auto (default): "
                        "the .pdmodel on CPU with oneDNN when it exists (less memory), else the .json")
    p.add_argument("--tile", type=int, default=0, help="tile size (multiple of 8) for large images; 0 = whole image")
    p.add_argument("--tile_overlap", type=int, default=32)
    p.add_argument("--max_memory", default=None, metavar="SIZE",
                   help="memory budget, e.g. 3G or 512M: images that would need more are restored in the "
                        "largest tiles that fit (default: half the memory available at start, at most 3G; "
                        "ignored with --tile)")
    p.add_argument("--benchmark", type=str2bool, default=False, help="print the AutoLog-style timing report")
    p.add_argument("--save_log_path", default=None, help="also write the benchmark report here")
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    os.environ.setdefault("GLOG_minloglevel", "2")
    from .. import memory, processing
    from ..inference import PaddlePredictor, PredictorOptions
    from ..files import check_budget, check_inputs_fit, check_settings, plan_outputs
    from ..inference.paddle_predictor import trt_size_range
    from ..inference.pipeline import restore_and_report

    if args.use_gpu is None:
        from ..compat import import_paddle
        from ..engine.env import auto_device_note, gpu_count

        import_paddle()
        count = gpu_count()
        args.use_gpu = count > 0
        print(auto_device_note("gpu" if args.use_gpu else "cpu", count))
    trt_min, trt_opt, trt_max = trt_size_range(args.trt_min_size, args.trt_opt_size,
                                               args.trt_max_size, args.tile)
    options = PredictorOptions(
        use_gpu=args.use_gpu, gpu_id=args.gpu_id, gpu_mem_mb=args.gpu_mem,
        enable_mkldnn=args.enable_mkldnn, cpu_threads=args.cpu_threads,
        use_tensorrt=args.use_tensorrt, precision=args.precision,
        trt_min_size=trt_min, trt_opt_size=trt_opt, trt_max_size=trt_max,
        max_batch_size=args.batch_size,
        trt_cache_dir=args.trt_cache_dir, shape_range_file=args.shape_range_file,
        prefer_legacy=args.legacy_program,
    )
    inputs = processing.list_inputs(args.image_dir, args.image_dir_right)
    check_settings(args.batch_size, args.tile, args.tile_overlap)
    plan_outputs(inputs, args.output_dir)
    budget = None if args.tile else memory.make_budget(args.max_memory, "gpu" if args.use_gpu else "cpu",
                                                        limit=memory.PHOTO_LIMIT)
    check_budget(inputs, budget)
    predictor = PaddlePredictor(args.model_dir, options, quiet=True)
    check_inputs_fit(predictor, inputs, "the right views with --image_dir_right")
    restore_and_report(predictor, inputs, args.output_dir, args.batch_size, args.tile, args.tile_overlap,
                       benchmark=args.benchmark, save_log_path=args.save_log_path, gpu_id=args.gpu_id,
                       budget=budget)

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
    from ..inference.pipeline import add_front_end_args

    p = make_parser(__doc__, prog)
    p.add_argument("--model_dir", required=True, help="folder with inference.json/.pdmodel + inference.pdiparams")
    add_front_end_args(p, "output/inference")
    p.add_argument("--use_gpu", type=_auto_or_bool, default=None,
                   help="True, False or auto (default): the GPU when this PaddlePaddle sees one")
    p.add_argument("--gpu_id", type=int, default=0)
    p.add_argument("--gpu_mem", type=int, default=500, help="initial GPU memory pool, MB")
    p.add_argument("--enable_mkldnn", type=str2bool, default=True, help="oneDNN kernels on CPU")
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
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    os.environ.setdefault("GLOG_minloglevel", "2")
    from ..inference import PaddlePredictor, PredictorOptions
    from ..inference.paddle_predictor import trt_size_range
    from ..inference.pipeline import run_front_end

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
    run_front_end(args, lambda: PaddlePredictor(args.model_dir, options, quiet=True),
                  device="gpu" if args.use_gpu else "cpu", gpu_id=args.gpu_id)

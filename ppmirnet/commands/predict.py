r"""Restore images with MIRNet or MIRNet-v2 weights, on the fastest engine installed.
Denoising, super-resolution, low-light and photo enhancement, or dual-pixel
defocus deblurring: whatever task the weights were trained for.

    ppmirnet predict --weights output/mirnet_lite/best_model.pdparams --input photo.png --output results/
    ppmirnet predict --weights W --input photos/ --output results/ --tile 256 --tile_overlap 32
    python tools/predict.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        --input photos/ --output results/

Weights written by this project (training checkpoints, converted official
weights) record their network, so no config is needed; -c CONFIG is needed
for older weights without that record, and otherwise only provides the
device and mixed precision (Global.device, Global.auto_cast).
--input is an image or a folder of images (png, jpg, bmp, tif, webp); each is
written to --output as <name>.png at its own bit depth (8 or 16) and layout
(grayscale, RGB, RGBA with the alpha kept). --tile restores large photos tile
by tile with blended overlaps, so memory stays bounded. The dual-pixel
MIRNet-v2 (defocus deblurring) takes the left views as --input and the right
views as --input_right (two files, or two folders paired by file name):

    ppmirnet predict --weights mirnetv2_dpdd.pdparams --input inputL/ --input_right inputR/ --output out/

--model NAME restores with the authors' weights of a task instead (ppmirnet
models lists the names), downloaded and converted on first use:

    ppmirnet predict --model mirnetv2_sidd --input photo.jpg --output out/

--engine auto (the default) runs, on a CPU, the fastest engine installed
(OpenVINO, then onnxruntime, Paddle Inference, dygraph), on a GPU dygraph; the
weights are exported for it once and the export is reused by later runs
(kept under $PPMIRNET_HOME/exports, default ~/.cache/ppmirnet/exports; see
docs/engines.md). --engine dygraph|paddle-inference|onnx|openvino picks one.
--precision bf16 runs OpenVINO in bfloat16 on CPUs with bfloat16 units (1.4-1.6x
faster on an Intel Xeon with AMX, 2026-12-07), outputs a few grey levels apart
from float32 (docs/engines.md).
"""

from ..cli import add_config_args, config_from_args, make_parser, str2bool
from ..errors import UserError
from ..inference.engines import CHOICES as ENGINES, PRECISIONS


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog), required=False)
    parser.add_argument("--weights", default=None,
                        help=".pdparams to restore with (default: the config's Global.pretrained_model)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="the authors' weights by name (ppmirnet models), instead of --weights")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--input_right", default=None,
                        help="dual-pixel models: the right views (a file, or a folder with the "
                             "file names of --input)")
    parser.add_argument("--output", required=True, help="folder for the restored PNGs")
    parser.add_argument("--tile", type=int, default=0,
                        help="tile size in pixels (a multiple of 8), e.g. 256; default 0: whole images")
    parser.add_argument("--tile_overlap", type=int, default=32, help="overlap of tiles in pixels")
    parser.add_argument("--max_memory", default=None, metavar="SIZE",
                        help="memory budget, e.g. 3G or 512M: images that would need more are "
                             "restored in the largest tiles that fit (default: half the memory "
                             "available at start, at most 3G; ignored with --tile)")
    parser.add_argument("--ensemble", type=str2bool, nargs="?", const=True, default=False,
                        help="x8 self-ensemble (8 times slower)")
    parser.add_argument("--device", default=None, choices=("auto", "cpu", "gpu"),
                        help="auto: the GPU when PaddlePaddle sees one, else the CPU (default: the "
                             "config's Global.device, auto without a config)")
    parser.add_argument("--engine", default="auto", choices=ENGINES,
                        help="what runs the network (default auto: on a CPU the fastest installed, "
                             "on a GPU dygraph)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS["openvino"],
                        help="fp32 (default), or bf16: OpenVINO in bfloat16, on CPUs with "
                             "bfloat16 units (faster with AMX)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    weights = args.weights or (cfg["Global"]["pretrained_model"] if cfg else None)
    if args.model is not None:
        from ..zoo import get

        get(args.model)
        if args.weights is not None:
            raise UserError("give --weights or --model, not both")
    elif weights is None:
        raise UserError("no weights given: pass --weights PATH(.pdparams) "
                        "(or -c CONFIG -o Global.pretrained_model=PATH)")

    from .. import memory, processing
    from ..files import check_budget, check_inputs_fit, check_settings, plan_outputs, restore_files
    from ..restorer import Restorer

    # Bad inputs, outputs or settings fail before the model is built.
    inputs = processing.list_inputs(args.input, args.input_right)
    check_settings(tile=args.tile, tile_overlap=args.tile_overlap)
    plan_outputs(inputs, args.output)
    device = args.device or (cfg["Global"]["device"] if cfg else None)
    max_memory = args.max_memory if args.max_memory is not None else (
        cfg["Global"].get("max_memory") if cfg else None)
    budget = None if args.tile else memory.make_budget(max_memory, device or "cpu", limit=memory.PHOTO_LIMIT)
    check_budget(inputs, budget)
    if args.model is not None:
        from ..zoo import resolve

        weights = resolve(args.model, log=print)
    restorer = Restorer(weights, config=cfg, device=device, tile=args.tile, engine=args.engine,
                        tile_overlap=args.tile_overlap, ensemble=args.ensemble, log=print,
                        max_memory=budget, precision=args.precision)
    print(f"engine: {restorer.engine} on {restorer.device}"
          + (f" in {restorer.precision}" if restorer.precision != "fp32" else ""))
    check_inputs_fit(restorer.runner, inputs, "the right views with --input_right")
    written = restore_files(restorer.runner, inputs, args.output, tile=args.tile,
                            tile_overlap=args.tile_overlap, log=print, budget=restorer.budget)
    print(f"wrote {len(written)} image(s) to {args.output}")

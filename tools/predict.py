"""Denoise images with MIRNet weights (dygraph).

    python tools/predict.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        --input photo.png --output results/
    python tools/predict.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        --input photos/ --output results/ --tile 256 --tile_overlap 32

--input is an image or a folder of images (png, jpg, bmp, tif, webp); each is
written to --output as <name>.png at its own bit depth (8 or 16) and layout
(grayscale, RGB, RGBA with the alpha kept). --tile restores large photos tile
by tile with blended overlaps, so memory stays bounded.
"""

import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from ppmirnet.cli import run_tool, str2bool
from ppmirnet.engine.cli_args import add_config_args, config_from_args, make_parser


def main(argv=None):
    parser = add_config_args(make_parser(__doc__))
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the restored PNGs")
    parser.add_argument("--tile", type=int, default=None,
                        help="tile size in pixels (a multiple of 8), e.g. 256; default: whole image")
    parser.add_argument("--tile_overlap", type=int, default=32, help="overlap of tiles in pixels")
    parser.add_argument("--ensemble", type=str2bool, nargs="?", const=True, default=False,
                        help="x8 self-ensemble (8 times slower)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if args.tile is not None and args.tile <= 0:
        args.tile = None

    from ppmirnet import processing
    from ppmirnet.config import amp_level
    from ppmirnet.engine.env import set_device
    from ppmirnet.engine.predictor import DygraphRunner, SelfEnsemble, load_model, predict_files

    processing.list_images(args.input)  # a missing input fails before the model is built
    set_device(cfg["Global"]["device"])
    runner = DygraphRunner(load_model(cfg), amp_level(cfg))
    if args.ensemble:
        runner = SelfEnsemble(runner)
    written = predict_files(runner, args.input, args.output, args.tile, args.tile_overlap)
    print(f"wrote {len(written)} image(s) to {args.output}")


if __name__ == "__main__":
    sys.exit(run_tool(main))

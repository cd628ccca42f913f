"""Generate a lite set (denoising, super-resolution or low-light) from scikit-image's photographs.

    python tools/make_lite_data.py --out data/lite
    python tools/make_lite_data.py --task sr --scale 4 --out data/lite_sr_x4
    python tools/make_lite_data.py --task lowlight --out data/lite_lol

Clean crops of skimage.data images (astronaut, rocket, motorcycle, ...) with
camera-like noise (Poisson-Gaussian in linear light, channel-correlated),
seeded, about 2 MB, in a second: train/{input,groundtruth}/*.png (12 pairs)
and val/{input,groundtruth}/*.png (4 pairs), plus lite.json with the noise
parameters. --task sr degrades the crops by area downscaling, bicubic
upscaling back and mild noise; --task lowlight darkens them in linear light
with shot/read noise (ppmirnet/data/lite.py). Nothing is downloaded. A set
already in --out is kept; --overwrite replaces a set this tool made, never
other data.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import make_parser, run_tool, str2bool


def main(argv=None):
    from ppmirnet.data.lite import DEFAULT_SEED, SR_SCALES, TASKS

    parser = make_parser(__doc__)
    parser.add_argument("--out", default="data/lite", help="output folder (default data/lite)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"noise seed (default {DEFAULT_SEED})")
    parser.add_argument("--task", default="denoise", choices=TASKS,
                        help="which degradation (default denoise)")
    parser.add_argument("--scale", type=int, default=4, choices=SR_SCALES,
                        help="super-resolution factor of --task sr (default 4)")
    parser.add_argument("--overwrite", type=str2bool, nargs="?", const=True, default=False,
                        help="replace an existing set")
    args = parser.parse_args(argv)

    import os

    from ppmirnet.data.lite import generated_set, make_lite_data, set_name

    found = generated_set(args.out)
    if found == (args.task, args.scale if args.task == "sr" else None) and not args.overwrite:
        print(f"{args.out} already exists (the lite {set_name(*found)} set); kept (pass "
              f"--overwrite to regenerate it)")
        return
    if found is None and os.path.isdir(os.path.join(args.out, "val")) and not args.overwrite:
        # A set in the lite layout made by hand: the user's data.
        print(f"{args.out} already exists (a set in the lite layout, not made by this tool); kept")
        return
    summary = make_lite_data(args.out, seed=args.seed, overwrite=args.overwrite, task=args.task,
                             scale=args.scale)
    print(f"wrote {len(summary['train'])} training and {len(summary['val'])} validation pairs "
          f"to {args.out} (input PSNR: train {summary['train_input_psnr_mean']:.2f} dB, "
          f"val {summary['val_input_psnr_mean']:.2f} dB)")


if __name__ == "__main__":
    sys.exit(run_tool(main))

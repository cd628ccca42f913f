"""Cut SIDD-Medium sRGB image pairs into training patches.

    python tools/prepare_sidd.py --src SIDD_Medium_Srgb/Data --out data/SIDD/train

The same as ``tools/prepare_data.py --dataset sidd`` (which prepares the
other datasets too). For each of the noisy/clean pairs
(<scene>/*_NOISY_SRGB_*.PNG with its *_GT_SRGB_*.PNG), cuts --num_patches
random --patch_size squares (official recipe: 300 of 256x256) into
out/input/NNNN_PPP.png and out/groundtruth/NNNN_PPP.png. Seeded: the same
--seed gives the same patches whatever --workers is.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import make_parser, run_tool


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--src", required=True, help="SIDD-Medium sRGB folder of scene folders")
    parser.add_argument("--out", default="data/SIDD/train", help="output folder (default data/SIDD/train)")
    parser.add_argument("--patch_size", type=int, default=256, help="patch size (default 256)")
    parser.add_argument("--num_patches", type=int, default=300, help="patches per image (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    args = parser.parse_args(argv)

    import prepare_data

    prepare_data.main(["--dataset", "sidd", "--src", args.src, "--out", args.out,
                       "--patch_size", str(args.patch_size), "--num_patches", str(args.num_patches),
                       "--seed", str(args.seed), "--workers", str(args.workers)])


if __name__ == "__main__":
    sys.exit(run_tool(main))

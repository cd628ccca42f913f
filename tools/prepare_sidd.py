"""Cut SIDD-Medium sRGB image pairs into training patches.

    python tools/prepare_sidd.py --src SIDD_Medium_Srgb/Data --out data/SIDD/train

For each of the noisy/clean pairs (<scene>/*_NOISY_SRGB_*.PNG with its
*_GT_SRGB_*.PNG), cuts --num_patches random --patch_size squares (official
recipe: 300 of 256x256) into out/input/NNNN_PPP.png and
out/groundtruth/NNNN_PPP.png. Seeded: the same --seed gives the same patches
whatever --workers is.
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

    from tqdm import tqdm

    from ppmirnet.data.sidd import find_sidd_medium_pairs, prepare_sidd_patches
    from ppmirnet.errors import UserError

    if args.patch_size < 8 or args.num_patches < 1:
        raise UserError("--patch_size must be >= 8 and --num_patches >= 1")
    pairs = find_sidd_medium_pairs(args.src)
    with tqdm(total=len(pairs), desc="images", unit="img", disable=None) as bar:
        n = prepare_sidd_patches(args.src, args.out, args.patch_size, args.num_patches,
                                 args.seed, args.workers, progress=lambda i: bar.update(1))
    print(f"wrote {n} patch pairs from {len(pairs)} images to {args.out}")


if __name__ == "__main__":
    sys.exit(run_tool(main))

"""Turn a raw dataset download into input/ + groundtruth/ training patches or test folders.

    python tools/prepare_data.py --dataset sidd --src SIDD_Medium_Srgb/Data --out data/SIDD/train
    python tools/prepare_data.py --dataset realsr --scale 4 --src RealSR_V1 --out data/RealSR/x4/train \
        --patch_size 256 --num_patches 50
    python tools/prepare_data.py --dataset realsr --scale 4 --split Test --src RealSR_V1 \
        --out data/RealSR/x4/test --whole
    python tools/prepare_data.py --dataset lol --src LOL/our485 --out data/LOL/train --whole
    python tools/prepare_data.py --dataset lol --src LOL/eval15 --out data/LOL/test --whole
    python tools/prepare_data.py --dataset fivek --src FiveK/train --out data/FiveK/train --whole

Datasets (data/README.md gives the downloads): sidd (<scene>/*_NOISY_SRGB_*.PNG
with *_GT_SRGB_*), realsr (version 1: <Canon|Nikon>/<Train|Test>/<scale>/
*_LR<scale>.png with *_HR.png, LR at the HR size), lol (low/ with high/),
fivek (input/ with expertC/), paired (input/ with groundtruth/). By default
--num_patches random --patch_size squares are cut from every pair into
out/input/NNNN_PPP.png and out/groundtruth/NNNN_PPP.png; seeded: the same
--seed gives the same patches whatever --workers is. --whole writes the
pairs whole as out/input/<name>.png and out/groundtruth/<name>.png (test
sets, and small training images that the loader crops itself).
"""

import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from ppmirnet.cli import make_parser, run_tool, str2bool


def main(argv=None):
    from ppmirnet.data.prepare import DATASETS

    parser = make_parser(__doc__)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS),
                        help="layout of --src (see above)")
    parser.add_argument("--src", required=True, help="the raw dataset folder")
    parser.add_argument("--out", required=True, help="output folder (gets input/ and groundtruth/)")
    parser.add_argument("--scale", type=int, default=None, help="RealSR only: 2, 3 or 4")
    parser.add_argument("--split", default="Train", choices=("Train", "Test"),
                        help="RealSR only: which split folder (default Train)")
    parser.add_argument("--whole", type=str2bool, nargs="?", const=True, default=False,
                        help="write whole pairs instead of patches")
    parser.add_argument("--patch_size", type=int, default=256, help="patch size (default 256)")
    parser.add_argument("--num_patches", type=int, default=300, help="patches per image (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from ppmirnet.data.prepare import copy_pairs, cut_patches, find_dataset_pairs
    from ppmirnet.errors import UserError

    if not args.whole and (args.patch_size < 8 or args.num_patches < 1):
        raise UserError("--patch_size must be >= 8 and --num_patches >= 1")
    if args.dataset == "realsr" and args.scale is None:
        raise UserError("--dataset realsr needs --scale (2, 3 or 4)")
    pairs = find_dataset_pairs(args.dataset, args.src, args.scale, args.split)
    with tqdm(total=len(pairs), desc="images", unit="img", disable=None) as bar:
        if args.whole:
            n = copy_pairs(pairs, args.out, progress=lambda i: bar.update(1))
            what = "whole pairs"
        else:
            n = cut_patches(pairs, args.out, args.patch_size, args.num_patches, args.seed,
                            args.workers, progress=lambda i: bar.update(1))
            what = "patch pairs"
    print(f"wrote {n} {what} from {len(pairs)} images to {args.out}")


if __name__ == "__main__":
    sys.exit(run_tool(main))

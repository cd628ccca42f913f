"""Write SIDD validation blocks (a ``.mat`` of 40x32x256x256x3 uint8) as PNG files.

    python test_tipc/sidd_blocks_to_png.py --mat data/SIDD/val/ValidationNoisyBlocksSrgb.mat \
        --out_dir test_tipc/data/MIRNet/infer_images --blocks_per_image 1

The TIPC whole-inference modes denoise these PNGs; file names are
``<image>_<block>.png`` (0-based, zero-padded).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from ppmirnet.cli import run_tool  # noqa: E402
from ppmirnet.errors import UserError  # noqa: E402


def load_blocks(path):
    """The single 5-D uint8 array (images, blocks, H, W, 3) stored in ``path``."""
    import scipy.io

    if not os.path.isfile(path):
        raise UserError(f"file not found: {path}")
    try:
        content = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for a bad file
        raise UserError(f"cannot read {path} as a .mat file: {err}") from err
    arrays = [v for k, v in content.items() if not k.startswith("__") and getattr(v, "ndim", 0) == 5]
    if len(arrays) != 1 or arrays[0].shape[-1] != 3:
        raise UserError(f"{path} holds no (images, blocks, H, W, 3) array of SIDD blocks")
    return arrays[0]


def write_blocks(blocks, out_dir, blocks_per_image):
    """Write the first ``blocks_per_image`` blocks of every image; return the paths."""
    import cv2

    from ppmirnet.utils.io import atomic_path

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i in range(blocks.shape[0]):
        for j in range(min(blocks_per_image, blocks.shape[1])):
            path = os.path.join(out_dir, f"{i:02d}_{j:02d}.png")
            ok, data = cv2.imencode(".png", blocks[i, j][:, :, ::-1])
            if not ok:
                raise UserError(f"cannot encode block {i},{j} as PNG")
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    f.write(data.tobytes())
            paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mat", required=True, help="ValidationNoisyBlocksSrgb.mat (or the Gt one)")
    parser.add_argument("--out_dir", required=True, help="folder for the PNG files")
    parser.add_argument("--blocks_per_image", type=int, default=1, help="blocks written per image (max 32)")
    args = parser.parse_args(argv)
    if args.blocks_per_image < 1:
        raise UserError("--blocks_per_image must be at least 1")
    paths = write_blocks(load_blocks(args.mat), args.out_dir, args.blocks_per_image)
    print(f"wrote {len(paths)} PNG files to {args.out_dir}")


if __name__ == "__main__":
    sys.exit(run_tool(main))

"""Convert an official MIRNet checkpoint (PyTorch) to Paddle weights.

    python tools/convert_weights.py --src model_denoising.pth --dst mirnet_sidd.pdparams

The architecture (n_feat, n_RRG, n_MSRB, height, width) is read off the
checkpoint. ``--src`` may also be an ``.npz`` of official key -> array, which
needs no PyTorch.
"""

import argparse
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from ppmirnet.cli import run_tool


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True, help="official checkpoint: .pth/.pt (needs torch) or .npz")
    parser.add_argument("--dst", required=True, help="output Paddle weights (.pdparams)")
    args = parser.parse_args(argv)

    from ppmirnet.convert import convert_checkpoint

    arch = convert_checkpoint(args.src, args.dst)
    shown = ", ".join(f"{k}={v}" for k, v in arch.items())
    print(f"converted {args.src} -> {args.dst} (MIRNet: {shown})")


if __name__ == "__main__":
    sys.exit(run_tool(main))

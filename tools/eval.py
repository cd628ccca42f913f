"""Evaluate MIRNet or MIRNet-v2 weights: mean PSNR/SSIM over DataLoader.Eval of a config.

The same command as ``ppmirnet eval`` (ppmirnet/commands/eval.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import eval as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

"""Convert an official MIRNet or MIRNet-v2 checkpoint (PyTorch) to Paddle weights.

The same command as ``ppmirnet convert`` (ppmirnet/commands/convert.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import convert as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

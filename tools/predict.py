"""Restore images with MIRNet or MIRNet-v2 weights, on the fastest engine installed.

The same command as ``ppmirnet predict`` (ppmirnet/commands/predict.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import predict as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

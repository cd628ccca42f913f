"""Render a results figure: crops of input | restored | ground truth with the PSNR under each.

The same command as ``ppmirnet figure`` (ppmirnet/commands/figure.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import figure as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

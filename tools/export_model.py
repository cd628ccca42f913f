"""Export MIRNet or MIRNet-v2 weights to a static inference model with dynamic height and width.

The same command as ``ppmirnet export`` (ppmirnet/commands/export.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import export as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

"""Train MIRNet or MIRNet-v2 from a YAML config.

The same command as ``ppmirnet train`` (ppmirnet/commands/train.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import train as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

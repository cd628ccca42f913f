"""List the authors' trained networks that ppmirnet downloads by name.

The same command as ``ppmirnet models`` (ppmirnet/commands/models.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import models as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

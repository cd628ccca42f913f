"""Download the authors' weights by name into the cache and convert them.

The same command as ``ppmirnet download`` (ppmirnet/commands/download.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import download as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

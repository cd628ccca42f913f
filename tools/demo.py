"""Open the try-it page (Gradio) to restore images in the browser.

The same command as ``ppmirnet demo`` (ppmirnet/commands/demo.py); --help shows the options.
"""

import sys

import _bootstrap  # noqa: F401  (this checkout's ppmirnet importable)

from ppmirnet.cli import run_tool
from ppmirnet.commands import demo as command

main = command.main

if __name__ == "__main__":
    sys.exit(run_tool(main))

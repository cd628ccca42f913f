"""Restore images with an exported MIRNet or MIRNet-v2 through Paddle Inference.

The same command as ``ppmirnet infer`` (ppmirnet/commands/infer.py); --help
shows the options. Every flag accepts ``--flag=value``.
"""

import importlib.util
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# From a plain clone (package not installed from this checkout) the
# repository root goes on sys.path, as tools/_bootstrap.py does.
_spec = importlib.util.find_spec("ppmirnet")
if _spec is None or os.path.realpath(os.path.dirname(_spec.origin or "")) != os.path.realpath(
        os.path.join(ROOT, "ppmirnet")):
    sys.path.insert(0, ROOT)

from ppmirnet.cli import run_tool  # noqa: E402
from ppmirnet.commands.infer import main, parse_args  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(run_tool(main))

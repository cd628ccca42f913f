"""Helpers shared by the command-line tools in ``tools/`` and ``deploy/``."""

import argparse
import sys
import warnings

from .errors import UserError


def run_tool(main, argv=None):
    """Run ``main(argv)`` and turn a :class:`UserError` into a message and exit 1.

    Returns the process exit code; tools end with ``sys.exit(run_tool(main))``.
    """
    # Paddle warns at import that ccache (for building C++ extensions) is
    # absent; the tools build no extension, so it is only noise on stderr.
    warnings.filterwarnings("ignore", message="No ccache found")
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as err:
        if err.name != "paddle":
            raise
        print("error: PaddlePaddle is not installed: pip install paddlepaddle==3.3.1 (CPU), or the "
              "paddlepaddle-gpu wheel for your CUDA (see the README)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def str2bool(value):
    """Parse TIPC-style booleans (``True``/``False``, ``1``/``0``, ``yes``/``no``)."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "y", "on"):
        return True
    if v in ("false", "0", "no", "n", "off", "none", "null"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {value!r}")

"""Helpers shared by every command line (ppmirnet.commands, tools/, deploy/, benchmarks/).

Running a tool (a user mistake is one line and exit 1), TIPC-style booleans,
and the ``-c config -o Section.key=value`` arguments of the config-driven tools.
"""

import argparse
import os
import sys
import warnings

from .errors import UserError


# Shown under every command's --help (RawDescriptionHelpFormatter keeps the lines).
EXIT_STATUS = """exit status:
  0  done
  1  error: a mistake in the files, weights, config values or data (one "error:" line)
  2  usage mistake: an unknown, missing or malformed option (argparse's usage message)
  130, 143  stopped by Ctrl-C / SIGTERM"""


def run_tool(main, argv=None):
    """Run ``main(argv)`` and turn a :class:`UserError` into a message and exit 1.

    Returns the process exit code; tools end with ``sys.exit(run_tool(main))``.
    """
    # Paddle warns at import that ccache (for building C++ extensions) is
    # absent; the tools build no extension, so it is only noise on stderr.
    # Precise: that message, from that module (see compat.import_paddle).
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning,
                            module=r"paddle\.utils\.cpp_extension")
    _quiet_opencv()
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 1)
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


def _quiet_opencv():
    # OpenCV prints its own warning lines for a broken file before the tool
    # reports it by name (and exits 1): keep only the tool's message.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    logging = getattr(getattr(sys.modules.get("cv2"), "utils", None), "logging", None)
    if logging is not None:  # OpenCV 4+ (3.4, in the serving environment, has none)
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)


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


def make_parser(doc, prog=None):
    """An ``argparse`` parser showing the tool's docstring as its help.

    ``prog`` names the command in usage lines (``ppmirnet predict``); by
    default the script's file name.
    """
    return argparse.ArgumentParser(prog=prog, description=doc, epilog=EXIT_STATUS,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_args(parser, required=True):
    """Add ``-c/--config`` (``required`` or not) and ``-o/--override`` (repeatable, several per flag)."""
    parser.add_argument("-c", "--config", required=required, default=None,
                        help="YAML config file (see configs/)")
    parser.add_argument(
        "-o", "--override", action="append", nargs="+", default=[], metavar="Section.key=value",
        help="change a config value, parsed as YAML: -o Global.epochs=2 "
             "-o Global.pretrained_model=output/best_model (repeatable)")
    return parser


def config_from_args(args):
    """The resolved config of parsed ``-c``/``-o`` arguments (None without ``-c``)."""
    from .config import load_config
    from .errors import ConfigError

    overrides = [item for group in args.override for item in group]
    if args.config is None:
        if overrides:
            raise ConfigError(f"-o {overrides[0]} needs a config to change: add -c CONFIG")
        return None
    return load_config(args.config, overrides)

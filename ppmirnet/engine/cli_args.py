"""Command-line arguments shared by the config-driven tools (``-c``, ``-o``)."""

import argparse

from ..config import load_config
from ..errors import ConfigError


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
    overrides = [item for group in args.override for item in group]
    if args.config is None:
        if overrides:
            raise ConfigError(f"-o {overrides[0]} needs a config to change: add -c CONFIG")
        return None
    return load_config(args.config, overrides)


def make_parser(doc, prog=None):
    """An ``argparse`` parser showing the tool's docstring as its help.

    ``prog`` names the command in usage lines (``ppmirnet predict``); by
    default the script's file name.
    """
    return argparse.ArgumentParser(prog=prog, description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

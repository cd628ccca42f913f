"""Command-line arguments shared by the config-driven tools (``-c``, ``-o``)."""

import argparse

from ..config import load_config


def add_config_args(parser):
    """Add ``-c/--config`` and ``-o/--override`` (repeatable, several per flag)."""
    parser.add_argument("-c", "--config", required=True, help="YAML config file (see configs/)")
    parser.add_argument(
        "-o", "--override", action="append", nargs="+", default=[], metavar="Section.key=value",
        help="change a config value, parsed as YAML: -o Global.epochs=2 "
             "-o Global.pretrained_model=output/best_model (repeatable)")
    return parser


def config_from_args(args):
    """The resolved config of parsed ``-c``/``-o`` arguments."""
    overrides = [item for group in args.override for item in group]
    return load_config(args.config, overrides)


def make_parser(doc):
    """An ``argparse`` parser showing the tool's docstring as its help."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)

"""List the authors' trained networks that ppmirnet downloads by name.

    ppmirnet models

Columns: name (for --model and Restorer.from_pretrained), network, task,
config (the task's settings), source (the authors' address, or the mirror's
when PPMIRNET_DOWNLOAD_MIRROR is set) and cached (yes: converted weights in
the cache; download only: the official file, not yet converted; no).
"""

from ..cli import make_parser


def main(argv=None, prog=None):
    parser = make_parser(__doc__, prog)
    parser.parse_args(argv)

    from ..download import weights_dir
    from ..zoo import table

    header = ("name", "network", "task", "config", "source", "cached")
    rows = [header] + table()
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[-1])
    print(f"cache: {weights_dir()}")

"""Download the authors' weights by name into the cache and convert them.

    ppmirnet download mirnetv2_sidd
    ppmirnet download all
    ppmirnet download mirnet_sidd --force      # fetch again (e.g. after a damaged file)

The cache is ~/.cache/ppmirnet/weights (PPMIRNET_HOME moves ~/.cache/ppmirnet);
PPMIRNET_DOWNLOAD_MIRROR (an http(s):// base URL or a folder holding the
official file names) replaces every official source. ppmirnet models lists
the names.
"""

from ..cli import make_parser


def main(argv=None, prog=None):
    parser = make_parser(__doc__, prog)
    parser.add_argument("names", nargs="+", metavar="NAME", help="model names, or all")
    parser.add_argument("--force", action="store_true",
                        help="download again even when a verified copy is cached")
    args = parser.parse_args(argv)

    from .. import zoo

    names = list(zoo.MODELS) if args.names == ["all"] else args.names
    for name in names:
        zoo.get(name)  # every name checked before the first download
    for name in names:
        path = zoo.resolve(name, force=args.force, log=print)
        print(f"{name}: {path}")

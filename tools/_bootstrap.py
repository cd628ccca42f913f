"""Make this checkout's ``ppmirnet`` importable for ``python tools/x.py``.

Installed from this checkout (``pip install -e .``, as requirements.txt
does) the package is importable already and ``sys.path`` is left alone; from
a plain clone, or when another copy of ``ppmirnet`` is installed, the
repository root goes first on ``sys.path`` so the tools run the code beside
them.
"""

import importlib.util
import os
import sys
import zlib  # noqa: F401  (before paddle: see ppmirnet/__init__.py)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _checkout_importable():
    spec = importlib.util.find_spec("ppmirnet")
    if spec is None or not spec.origin:
        return False
    return os.path.realpath(os.path.dirname(spec.origin)) == os.path.realpath(os.path.join(ROOT, "ppmirnet"))


if not _checkout_importable():
    sys.path.insert(0, ROOT)

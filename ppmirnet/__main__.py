"""``python -m ppmirnet <command>``: the ``ppmirnet`` command without the console script."""

import sys

from .commands import main

sys.exit(main())

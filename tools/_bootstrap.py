"""Put the repository root on ``sys.path`` so ``python tools/x.py`` works from a clone."""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Paddle warns at import that ccache (for building C++ extensions) is absent;
# the tools build no extension, so the warning is only noise on stderr.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="No ccache found")

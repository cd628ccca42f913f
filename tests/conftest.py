"""Test session set-up."""

# Before any test module imports paddle (see ppmirnet/__init__.py: Paddle 2.6's zlib).
import zlib  # noqa: F401

import pytest


@pytest.fixture(scope="module")
def lite_root(tmp_path_factory):
    """A generated lite denoising set, one per test module (tests may add to their copy)."""
    from ppmirnet.data.lite import make_lite_data

    root = str(tmp_path_factory.mktemp("data") / "lite")
    make_lite_data(root)
    return root

"""Test session set-up."""

import os

# Before any test module imports paddle (see ppmirnet/__init__.py: Paddle 2.6's zlib).
import zlib  # noqa: F401

import pytest

# The tests run in two workers whose Paddle, oneDNN and OpenMP thread pools
# share the cores: idle OpenMP threads that spin for work took CPU time the
# other worker needed (a third more CPU time on 2 cores). Passive threads sleep
# instead. Set before Paddle is imported, so it holds here and in every child.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session", autouse=True)
def ppmirnet_home(tmp_path_factory):
    """The export cache of every test (and the tools they start): never the user's ~/.cache."""
    path = str(tmp_path_factory.mktemp("ppmirnet_home"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PPMIRNET_HOME", path)
        yield path


@pytest.fixture(scope="module")
def lite_root(tmp_path_factory):
    """A generated lite denoising set, one per test module (tests may add to their copy)."""
    from ppmirnet.data.lite import make_lite_data

    root = str(tmp_path_factory.mktemp("data") / "lite")
    make_lite_data(root)
    return root

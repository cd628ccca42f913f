"""Python's zlib is loaded before paddle by the package and by every entry point.

Paddle 2.6's ``libpaddle.so`` exports its own old zlib: in a process that
loads Python's ``zlib`` only after ``import paddle``, numpy 2's late
``numpy.random`` import fails ("inconsistent stream state") or
``paddle.jit.save`` crashes in ``inflateReset2``. Paddle 3 is not affected, so
these checks only fail on the Paddle 2.6 line (the second CI job).
"""

import glob
import os

import pytest

from helpers import ROOT, run_cli

# After the entry point's own imports: paddle, numpy.random, zlib and paddle.jit.save.
_USE = """
import paddle, numpy as np, zlib, tempfile, os
np.random.default_rng(0).random(3)
assert zlib.decompress(zlib.compress(b"x" * 100000)) == b"x" * 100000
layer = paddle.jit.to_static(paddle.nn.Linear(2, 2),
                             input_spec=[paddle.static.InputSpec([None, 2], "float32")])
paddle.jit.save(layer, os.path.join(tempfile.mkdtemp(), "m"))
print("ok")
"""

ENTRY_POINTS = sorted(
    p for p in glob.glob(os.path.join(ROOT, "tools", "*.py"))
    + glob.glob(os.path.join(ROOT, "deploy", "*", "*.py"))
    + [os.path.join(ROOT, "benchmarks", "run_benchmark.py"),
       os.path.join(ROOT, "test_tipc", "sidd_blocks_to_png.py")]
    if not os.path.basename(p).startswith("_"))


def test_package_then_paddle_then_numpy_random_and_zlib():
    proc = run_cli("-c", "import ppmirnet\n" + _USE)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.parametrize("script", ENTRY_POINTS + ["ppmirnet"],
                         ids=lambda p: os.path.relpath(p, ROOT) if os.sep in p else p)
def test_entry_point_loads_zlib_first(script):
    # The entry point's imports (its --help exits before any work), then paddle;
    # "ppmirnet" is the command (python -m ppmirnet).
    run = ("runpy.run_module('ppmirnet', run_name='__main__', alter_sys=True)" if script == "ppmirnet"
           else "runpy.run_path(sys.argv[0], run_name='__main__')")
    code = (f"import os, runpy, sys\nsys.argv = [{script!r}, '--help']\n"
            "sys.path.insert(0, os.path.dirname(sys.argv[0]))\n"
            f"try:\n    {run}\n"
            "except SystemExit:\n    pass\n"
            "assert 'zlib' in sys.modules, 'zlib not loaded by the entry point'\n"
            "mods = list(sys.modules)\n"
            "assert 'paddle' not in mods or mods.index('zlib') < mods.index('paddle')\n" + _USE)
    proc = run_cli("-c", code)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]

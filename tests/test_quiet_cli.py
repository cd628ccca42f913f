"""Command lines that tell the truth and only what matters: help texts, exit codes, no third-party noise."""

import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT
from ppmirnet import commands

TASK_WORDS = ("denois", "super-resol", "enhance", "deblur")


def _help(name):
    proc = subprocess.run([sys.executable, "-m", "ppmirnet", name, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["train", "eval", "predict", "export", "convert", "infer", "figure"])
def test_help_names_every_task_and_the_exit_codes(name):
    text = _help(name)
    description = text.split("\n\n", 2)[1].lower()  # after the usage block
    for word in TASK_WORDS:
        assert word in description, (name, word, description)
    assert "exit status:\n  0  done\n  1  error:" in text
    assert "\n  2  usage mistake: an unknown, missing or malformed option" in text


def test_help_examples_keep_their_line_breaks():
    text = _help("predict")
    assert ("    python tools/predict.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \\\n"
            "        --input photos/ --output results/\n") in text
    text = _help("export")
    assert "-o Global.pretrained_model=W \\\n        --save_dir inference/mirnet_sidd\n" in text


def test_top_level_help_and_usage_exit_codes(capsys):
    assert commands.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n  predict +restore images \(denoise, super-resolve, enhance, deblur\) with weights", out)
    assert "2  usage mistake" in out
    with pytest.raises(SystemExit) as exit_:
        commands.main(["predict", "--no_such_flag"])
    assert exit_.value.code == 2
    assert "error: the following arguments are required: --input, --output" in capsys.readouterr().err


def _stderr_of(code, path_env):
    env = dict(os.environ, PATH=path_env, PYTHONPATH=ROOT)
    env.pop("GLOG_minloglevel", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_no_ccache_warning_from_the_library(tmp_path):
    # A PATH without ccache (nor `which`): Paddle then always warns on import.
    empty = str(tmp_path)
    assert "No ccache found" in _stderr_of("import paddle", empty)  # what a plain import shows
    assert "ccache" not in _stderr_of("from ppmirnet.modeling import MIRNet; MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)",
                                      empty)
    assert "ccache" not in _stderr_of("from ppmirnet import Restorer\n"
                                      "try:\n    Restorer('missing.pdparams', device='cpu')\n"
                                      "except Exception as e:\n    print(e)", empty)
    # Only that warning: others still show.
    assert "UserWarning: kept" in _stderr_of("import warnings\nfrom ppmirnet.modeling import MIRNet\n"
                                             "warnings.warn('kept')", empty)


STATIC_PAD = """
import paddle
from ppmirnet.modeling.padding import pad_tensor_to_multiple
paddle.enable_static()
prog = paddle.static.Program()
with paddle.static.program_guard(prog):
    x = paddle.static.data("x", [None, 3, None, None], "float32")
    {body}
exe = paddle.static.Executor(paddle.CPUPlace())
import numpy as np
for h, w in [(1 + 8, 1 + 8), (17, 23), (32, 40), (9, 31)]:
    y, = exe.run(prog, feed={{"x": np.random.rand(1, 3, h, w).astype("float32")}}, fetch_list=[out])
    print(h, w, y.shape[2], y.shape[3])
"""


def test_export_padding_prints_no_pir_warning():
    env_path = os.environ.get("PATH", "")
    ours = _stderr_of(STATIC_PAD.format(body="out, _ = pad_tensor_to_multiple(x, 8)"), env_path)
    assert "not support input out tensor" not in ours
    # The expression it replaces does print it (so this test can see the warning).
    theirs = _stderr_of(STATIC_PAD.format(body="h = paddle.shape(x)[2]\n    out = x[:, :, :(h + 7) // 8 * 8]"),
                        env_path)
    assert "not support input out tensor" in theirs


def test_static_padding_rounds_up_exactly():
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", STATIC_PAD.format(body="out, _ = pad_tensor_to_multiple(x, 8)")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [tuple(int(v) for v in line.split()) for line in proc.stdout.split("\n") if line.strip()]
    assert rows == [(9, 9, 16, 16), (17, 23, 24, 24), (32, 40, 32, 40), (9, 31, 16, 32)]

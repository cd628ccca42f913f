"""The installable package: ``pip install .``, the ``ppmirnet`` command and its subcommands."""

import os
import shutil
import site
import subprocess
import sys

import cv2
import numpy as np
import paddle
import pytest

from helpers import ROOT, run_cli
from lite_helpers import LITE_CONFIG
from ppmirnet import Restorer, commands
from ppmirnet.engine.checkpoint import save_weights
from ppmirnet.modeling import MIRNet

# subcommand -> the script that TIPC and the README call for it
SCRIPTS = {
    "train": "tools/train.py",
    "eval": "tools/eval.py",
    "predict": "tools/predict.py",
    "export": "tools/export_model.py",
    "convert": "tools/convert_weights.py",
    "models": "tools/list_models.py",
    "download": "tools/download_weights.py",
    "infer": "deploy/inference/infer.py",
    "figure": "tools/make_figure.py",
    "demo": "tools/demo.py",
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Lite weights with their network recorded, and the same weights without the record."""
    paddle.seed(21)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    folder = tmp_path_factory.mktemp("pkg")
    recorded = str(folder / "recorded.pdparams")
    save_weights(recorded, model.state_dict(), {"name": "MIRNet", **model.arch})
    old = str(folder / "old.pdparams")
    paddle.save(model.state_dict(), old)
    return recorded, old


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("img") / "noisy.png")
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 256, (36, 52, 3), dtype=np.uint8))
    return path


def _main(argv, capsys):
    code = commands.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_subcommand_is_its_script(capsys):
    assert list(commands.COMMANDS) == list(SCRIPTS)
    code, out, _ = _main(["--help"], capsys)
    assert code == 0 and all(f"  {name}" in out for name in SCRIPTS)
    for name, script in SCRIPTS.items():
        with pytest.raises(SystemExit) as exc:
            commands.command_main(name)(["--help"], prog=f"ppmirnet {name}")
        assert exc.value.code == 0
        via_command = capsys.readouterr().out
        proc = run_cli(script, "--help")
        assert proc.returncode == 0, proc.stderr
        # The same options and text; only the usage block (program name and
        # argparse's wrapping of it) differs.
        assert via_command.startswith(f"usage: ppmirnet {name} ")
        assert proc.stdout.startswith(f"usage: {os.path.basename(script)} ")
        assert via_command.split("\n\n", 1)[1] == proc.stdout.split("\n\n", 1)[1]


def test_unknown_or_missing_command(capsys):
    code, _, err = _main(["trian"], capsys)
    assert code == 2 and "error: unknown command 'trian'; expected one of: train, eval" in err
    code, _, err = _main([], capsys)
    assert code == 2 and "usage: ppmirnet <command>" in err


def test_user_mistakes_exit_1_with_one_line(weights, image, tmp_path, capsys):
    recorded, old = weights
    out_dir = str(tmp_path / "out")
    cases = [
        (["predict", "--input", image, "--output", out_dir], "error: no weights given: pass --weights"),
        (["predict", "--weights", old, "--input", image, "--output", out_dir],
         f"error: {old} does not record its network (weights saved by an older version): "
         f"pass the config it was trained with (-c CONFIG"),
        (["predict", "--weights", recorded, "-o", "Global.device=cpu", "--input", image,
          "--output", out_dir], "error: -o Global.device=cpu needs a config to change: add -c CONFIG"),
        (["predict", "--weights", recorded, "--input", str(tmp_path / "none.png"), "--output", out_dir],
         "error: input not found"),
        (["eval", "-c", str(tmp_path / "missing.yaml")], "error:"),
    ]
    for argv, message in cases:
        code, _, err = _main(argv, capsys)
        assert code == 1, argv
        assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err, err
    assert not os.path.exists(out_dir)


def test_predict_old_weights_with_a_config(weights, image, tmp_path, capsys):
    recorded, old = weights
    out_a, out_b = str(tmp_path / "a"), str(tmp_path / "b")
    code, out, err = _main(["predict", "-c", LITE_CONFIG, "--weights", old, "--input", image,
                            "--output", out_a], capsys)
    assert code == 0, err
    assert "wrote 1 image(s)" in out
    code, _, err = _main(["predict", "--weights", recorded, "--device", "cpu", "--input", image,
                          "--output", out_b], capsys)
    assert code == 0, err
    a = cv2.imread(os.path.join(out_a, "noisy.png"))
    np.testing.assert_array_equal(a, cv2.imread(os.path.join(out_b, "noisy.png")))
    expected = Restorer(recorded, device="cpu")(cv2.imread(image)[:, :, ::-1])
    np.testing.assert_array_equal(a[:, :, ::-1], expected)


def _package_copy(dst):
    """The files ``pip install .`` builds from (a copy, so the build leaves nothing in the repository)."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), dst / name)
    shutil.copytree(os.path.join(ROOT, "ppmirnet"), dst / "ppmirnet",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_pip_install_then_predict_with_no_config(weights, image, tmp_path):
    """A fresh virtual environment: ``pip install .``, then the ``ppmirnet`` command alone."""
    recorded, _ = weights
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=300)
    # The packages of this environment (Paddle, OpenCV, pip, setuptools, ...)
    # are visible in the new one, so nothing is downloaded; ppmirnet is not.
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(purelib, "parent_env.pth"), "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")
    src = _package_copy(tmp_path / "src")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GLOG_minloglevel"] = "2"
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--no-build-isolation", "--no-deps", "--no-index", str(src)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import ppmirnet; print(ppmirnet.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert where.stdout.strip().startswith(purelib), where.stdout + where.stderr

    out_dir = work / "denoised"
    proc = subprocess.run([str(venv / "bin" / "ppmirnet"), "predict", "--weights", recorded,
                           "--input", image, "--output", str(out_dir)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 1 image(s) to {out_dir}" in proc.stdout
    restored = cv2.imread(str(out_dir / "noisy.png"))
    expected = Restorer(recorded, device="cpu")(cv2.imread(image)[:, :, ::-1])
    np.testing.assert_array_equal(restored[:, :, ::-1], expected)

    proc = subprocess.run([str(venv / "bin" / "ppmirnet"), "predict", "--input", image,
                           "--output", str(out_dir)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1 and proc.stderr.startswith("error: no weights given")


def test_without_paddle_the_command_says_what_to_install(weights, image, tmp_path):
    recorded, _ = weights
    blocker = tmp_path / "nopaddle"
    blocker.mkdir()
    (blocker / "paddle.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'paddle'\", name='paddle')\n")
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{ROOT}")
    proc = subprocess.run([sys.executable, "-m", "ppmirnet", "predict", "--weights", recorded,
                           "--input", image, "--output", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == ("error: PaddlePaddle is not installed: pip install paddlepaddle==3.3.1 "
                           "(CPU), or the paddlepaddle-gpu wheel for your CUDA (see the README)\n")

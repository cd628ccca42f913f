"""Every shell command of README.md, README_cn.md and the docs/ pages runs as written on a CPU.

The commands are taken from the documents' ```bash blocks (tests/doc_commands.py)
and run in document order, in a copy of the repository, each once. A command
either runs as written, runs with shortened settings (OVERRIDES: the same
command, fewer epochs), is not run for the reason given (NOT_RUN), or belongs
A command in no table fails the test, so a new command in the documents must
be run or explained here. Named models are fetched from a local mirror holding
small checkpoints written by PyTorch under the official file names (the
authors' addresses are not reachable from CI).
"""

import os
import re
import shutil
import subprocess
import sys

import cv2
import pytest

from doc_commands import commands_by_file
from helpers import ROOT

SHORTER = " -o Global.epochs=1"  # the lite recipes in one epoch: the same code path, a worse model

# command -> what runs instead (the same command with shortened settings)
OVERRIDES = {
    "ppmirnet train -c configs/mirnet_lite.yaml": "ppmirnet train -c configs/mirnet_lite.yaml" + SHORTER,
    "ppmirnet train -c configs/mirnet_lite_sr.yaml": "ppmirnet train -c configs/mirnet_lite_sr.yaml" + SHORTER,
    "ppmirnet train -c configs/mirnet_lite_lol.yaml": "ppmirnet train -c configs/mirnet_lite_lol.yaml" + SHORTER,
    "python tools/train.py -c configs/mirnet_lite.yaml": "python tools/train.py -c configs/mirnet_lite.yaml" + SHORTER,
    # docs/engines.md's W and photos/: the lite model trained above and the test's photo.
    **{f"ppmirnet predict --weights W --input photos/ --output out/{flags}":
       f"ppmirnet predict --weights output/mirnet_lite/best_model.pdparams --input photo.jpg "
       f"--output out/engines{flags}" for flags in ("", " --engine dygraph", " --engine onnx --tile 512")},
}

_PIP = "installs packages into a virtual environment: what .ci/run does before the tests"
_PTH = ("needs an official .pth checkpoint (the authors' Google Drive folder or GitHub release), "
        "not reachable from CI; conversion is tested on fixtures (tests/test_convert*.py)")
_DATA = "needs a full dataset (SIDD, DND, RealSR, DPDD) and official weights, not downloadable in CI"
_SIDD_TRAIN = "trains on SIDD (not in CI) for days; the same code trains the lite configs above"
_SERVING = ("starts Paddle Serving (builds its 1 GB Python 3.8/3.9 environment); run by "
            "tests/test_serving.py and the TIPC serving chain in CI")
_TIPC = "the TIPC chains: CI runs them (bash test_tipc/ci.sh) after the tests"

_MIRROR_EXAMPLE = "sets an example mirror address; the test sets its own mirror (a local folder)"

# command -> why it is not run here
NOT_RUN = {
    "export PPMIRNET_DOWNLOAD_MIRROR=https://files.example.org/mirnet": _MIRROR_EXAMPLE,
    "export PPMIRNET_DOWNLOAD_MIRROR=/mnt/share/mirnet-weights": _MIRROR_EXAMPLE,
    "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt": _PIP,
    "python3 -m venv .venv && . .venv/bin/activate": _PIP,
    "pip install -r requirements.txt": _PIP,
    "pip install -r requirements-paddle26.txt": _PIP + " (.ci/paddle26.sh for this one)",
    "pip install paddlepaddle-gpu==2.6.2": "installs the GPU wheel (an NVIDIA GPU and CUDA needed)",
    "pip install -r requirements-gpu.txt": "installs the GPU environment (an NVIDIA GPU and CUDA needed)",
    "pip install paddlepaddle-gpu==3.3.1 -i https://www.paddlepaddle.org.cn/packages/stable/cu126/":
        "installs the GPU wheel from Paddle's index (an NVIDIA GPU and CUDA needed)",
    "ppmirnet convert --src model_denoising.pth --dst mirnet_sidd.pdparams": _PTH,
    "python tools/convert_weights.py --src model_denoising.pth --dst mirnet_sidd.pdparams": _PTH,
    **{f"python tools/convert_weights.py --src {src} --dst {dst}.pdparams": _PTH for src, dst in [
        ("real_denoising.pth", "mirnetv2_sidd"), ("sr_x2.pth", "mirnetv2_realsr_x2"),
        ("sr_x3.pth", "mirnetv2_realsr_x3"), ("sr_x4.pth", "mirnetv2_realsr_x4"),
        ("enhancement_lol.pth", "mirnetv2_lol"), ("enhancement_fivek.pth", "mirnetv2_fivek"),
        ("dual_pixel_defocus_deblurring.pth", "mirnetv2_dpdd")]},
    "ppmirnet eval -c configs/mirnet_sidd.yaml -o Global.pretrained_model=mirnet_sidd.pdparams": _DATA,
    "python tools/eval.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=mirnet_sidd.pdparams": _DATA,
    "python tools/eval.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=mirnet_sidd.pdparams --ensemble": _DATA,
    "python tools/eval.py -c configs/mirnet_dnd.yaml -o Global.pretrained_model=mirnet_sidd.pdparams": _DATA,
    "python tools/eval.py -c configs/mirnet_realsr_x4.yaml -o Global.pretrained_model=mirnet_realsr_x4.pdparams "
    "-o DataLoader.Eval.dataset.root=DIR --save_images out/x4": _DATA,
    "python tools/eval.py -c configs/mirnetv2_realsr_x4.yaml -o Global.pretrained_model=mirnetv2_realsr_x4.pdparams": _DATA,
    "python tools/predict.py --weights mirnetv2_dpdd.pdparams --input path/to/inputL/ --input_right path/to/inputR/ "
    "--output output/deblurred": _DATA + " (dual-pixel pairs are tested in tests/test_dual_pixel.py)",
    "python tools/prepare_sidd.py --src /path/to/SIDD_Medium_Srgb/Data --out data/SIDD/train --num_patches 300": _DATA,
    "ppmirnet train -c configs/mirnet_sidd.yaml -o Global.resume=auto": _SIDD_TRAIN,
    "python tools/train.py -c configs/mirnet_sidd.yaml": _SIDD_TRAIN,
    "python tools/train.py -c configs/mirnet_sidd.yaml -o Global.resume=auto": _SIDD_TRAIN,
    "python tools/train.py -c configs/mirnet_sidd.yaml -o Global.auto_cast=amp": _SIDD_TRAIN + " (AMP needs a GPU)",
    "python -m paddle.distributed.launch --nnodes 2 --master $MASTER_ADDR:8090 --rank 0 tools/train.py -c "
    "configs/mirnet_sidd.yaml": "needs two machines and SIDD; tests/test_robustness.py runs two launchers on "
    "127.0.0.1 as two nodes of one CPU job",
    "python -m paddle.distributed.launch --gpus 0,1 --log_dir output/launch tools/train.py -c configs/mirnet_sidd.yaml "
    "-o DataLoader.Train.sampler.batch_size=8": _SIDD_TRAIN + " (two GPUs)",
    "bash deploy/serving/run.sh start --model_dir=inference/mirnet_lite": _SERVING,
    "bash deploy/serving/run.sh stop": _SERVING,
    "python deploy/serving/pipeline_http_client.py --image_path=data/lite/val/input/00_coffee_0.png "
    "--output_dir=out/serving": _SERVING,
    "python deploy/serving/pipeline_http_client.py --image_path=path/to/noisy.png --output_dir=output/serving": _SERVING,
    "curl -s -X POST http://127.0.0.1:18080/mirnet/prediction -H 'Content-Type: application/json' -d "
    "\"{\\\"key\\\": [\\\"image\\\"], \\\"value\\\": [\\\"$(base64 -w0 path/to/noisy.png)\\\"]}\" | cut -c1-100": _SERVING,
    "curl -s -X POST http://127.0.0.1:18080/mirnet/prediction -d '{\"key\": [\"picture\"], \"value\": [\"x\"]}'": _SERVING,
    "bash test_tipc/prepare.sh test_tipc/configs/MIRNet/train_infer_python.txt lite_train_lite_infer": _TIPC,
    "bash test_tipc/test_train_inference_python.sh test_tipc/configs/MIRNet/train_infer_python.txt "
    "lite_train_lite_infer": _TIPC,
    "bash test_tipc/prepare.sh test_tipc/configs/MIRNet/serving_infer_python.txt serving_infer": _TIPC,
    "bash test_tipc/test_serving_infer_python.sh test_tipc/configs/MIRNet/serving_infer_python.txt serving_infer": _TIPC,
}


# command -> files it must have written (relative to the copy's root)
WRITES = {
    "ppmirnet predict --model mirnetv2_sidd --input photo.jpg --output out/": ["out/photo.png"],
    "ppmirnet predict --weights output/mirnet_lite/best_model.pdparams --input photo.jpg --output out/":
        ["out/photo.png"],
    "ppmirnet predict --weights output/mirnet_lite/best_model.pdparams --input data/lite/val/input --output out/lite":
        ["out/lite/00_coffee_0.png"],
    "ppmirnet export -c configs/mirnet_lite.yaml -o Global.pretrained_model=output/mirnet_lite/best_model "
    "--save_dir inference/mirnet_lite --legacy_format":
        ["inference/mirnet_lite/inference.json", "inference/mirnet_lite/inference.pdmodel"],
    "python deploy/onnx/export_onnx.py --model_dir=inference/mirnet_lite --save_file=inference/mirnet_lite/mirnet.onnx":
        ["inference/mirnet_lite/mirnet.onnx"],
}


def _all_commands():
    ordered = []
    for commands in commands_by_file(ROOT).values():
        for command in commands:
            if command not in ordered:
                ordered.append(command)
    return ordered


def test_every_command_is_run_or_explained():
    commands = _all_commands()
    assert len(commands) > 30
    unexplained = [c for c in commands if c in NOT_RUN and not NOT_RUN[c].strip()]
    assert not unexplained
    tables = [set(OVERRIDES), set(NOT_RUN)]
    for i, a in enumerate(tables):
        for b in tables[i + 1:]:
            assert not a & b, a & b
    # Stale entries: every table entry is still a command of the documents.
    stale = (set(OVERRIDES) | set(NOT_RUN) | set(WRITES)) - set(commands)
    assert not stale, stale


def test_the_chinese_readme_has_the_same_commands():
    by_file = commands_by_file(ROOT)
    assert by_file["README_cn.md"] == by_file["README.md"]


def _repository_copy(dst):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(dst, name)) or dst, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(dst, name))


def test_the_commands_run_on_a_cpu(tmp_path):
    root = str(tmp_path / "repo")
    _repository_copy(root)
    # "photo.jpg is yours": a photograph of scikit-image's, as a JPEG.
    from skimage import data

    cv2.imwrite(os.path.join(root, "photo.jpg"), data.astronaut()[100:292, 150:406, ::-1])
    bin_dir = os.path.dirname(sys.executable)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "pth", "mirnetv2_zip.pth"), mirror / "real_denoising.pth")
    env = dict(os.environ, PYTHONPATH=root, GLOG_minloglevel="2",
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
               PPMIRNET_HOME=str(tmp_path / "home"), PPMIRNET_DOWNLOAD_MIRROR=str(mirror))
    ran = []
    for command in _all_commands():
        if command in NOT_RUN:
            continue
        actual = OVERRIDES.get(command, command)
        # A command that names a machine other than this one is never run here.
        assert not re.search(r"\b(?!127\.)\d{1,3}(\.\d{1,3}){3}\b", actual), actual
        proc = subprocess.run(["bash", "-c", actual], cwd=root, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, f"{actual}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        for path in WRITES.get(command, []):
            assert os.path.getsize(os.path.join(root, path)) > 0, (command, path)
        ran.append(command)
    assert "device: auto -> cpu" in subprocess.run(
        ["bash", "-c", "ppmirnet predict --weights output/mirnet_lite/best_model.pdparams --input photo.jpg "
                       "--output out/again"], cwd=root, env=env, capture_output=True, text=True).stdout
    assert len(ran) >= 15, ran


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def test_the_readmes_follow_the_template_and_mirror_each_other():
    en, cn = _read("README.md"), _read("README_cn.md")
    assert len(en.split("\n")) <= 300 and len(cn.split("\n")) <= 300
    first = "\n".join(en.split("\n")[:40])
    assert "ppmirnet predict --model mirnetv2_sidd --input photo.jpg --output out/" in first
    assert "ppmirnet predict --weights output/mirnet_lite/best_model.pdparams --input photo.jpg" in first
    assert "12-megapixel photo" in first and "GB" in first  # how long a photo takes here, and its memory
    import re

    sections = [re.findall(r"^## (\d)\. ", text, flags=re.M) for text in (en, cn)]
    assert sections[0] == sections[1] == [str(i) for i in range(1, 9)]
    subsections = [re.findall(r"^### (\d\.\d) ", text, flags=re.M) for text in (en, cn)]
    assert subsections[0] == subsections[1] == ["3.1", "3.2", "3.3", "4.1", "4.2", "4.3", "5.1", "5.2"]
    assert "[简体中文](README_cn.md)" in en.split("\n")[2] and "[English](README.md)" in cn.split("\n")[2]
    # Every docs/ page the README links to exists.
    for page in re.findall(r"\]\((docs/[a-z_]+\.md)", en):
        assert os.path.exists(os.path.join(ROOT, page)), page
    # The results table: every named model links its authors' file, its inference-model
    # command and the training log of a lite run, in both languages.
    from ppmirnet.zoo import MODELS

    for text in (en, cn):
        for name, model in MODELS.items():
            rows = [line for line in text.split("\n") if line.startswith(f"| [`{name}`](")]
            assert len(rows) == 1, name
            assert rows[0].startswith(f"| [`{name}`]({model.source['url']}) |"), rows[0]
            assert f"`ppmirnet export --model {name}`" in rows[0], rows[0]
            logs = re.findall(r"\]\((docs/logs/[a-z0-9_]+\.log)\)", rows[0])
            assert len(logs) == 1 and os.path.exists(os.path.join(ROOT, logs[0])), rows[0]
            assert "[Eval] psnr:" in _read(logs[0])

"""Paddle Inference deployment: predictor parity with dygraph, the infer.py CLI, the report."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from helpers import ROOT, run_cli
from ppmirnet import processing
from ppmirnet.errors import MissingDependencyError, UserError
from ppmirnet.compat import program_formats
from ppmirnet.export import export_inference_model, find_program
from ppmirnet.inference import PaddlePredictor, PredictorOptions, StageTimer, plan_outputs, restore_files
from ppmirnet.inference.report import build_report, format_report, save_report
from ppmirnet.modeling import MIRNet

INFER = os.path.join("deploy", "inference", "infer.py")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny MIRNet, its dygraph runner and its export (both program formats)."""
    paddle.seed(3)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    model.eval()
    model_dir = str(tmp_path_factory.mktemp("model"))
    export_inference_model(model, model_dir, legacy_format=True)

    def dygraph(batch):
        with paddle.no_grad():
            return model(paddle.to_tensor(batch)).numpy()

    return model_dir, dygraph


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Odd-sized inputs: two 8-bit colour of one size, a 16-bit grey, an RGBA."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 256, (75, 100, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "b.png"), rng.integers(0, 256, (75, 100, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "c.png"), rng.integers(0, 65536, (61, 50), dtype=np.uint16))
    cv2.imwrite(str(folder / "d.png"), rng.integers(0, 256, (40, 57, 4), dtype=np.uint8))
    return str(folder)


@pytest.mark.parametrize("program", program_formats())
@pytest.mark.parametrize("mkldnn", [True, False], ids=["onednn", "native"])
def test_predictor_matches_dygraph_on_odd_sizes(exported, program, mkldnn):
    model_dir, dygraph = exported
    predictor = PaddlePredictor(model_dir, PredictorOptions(
        enable_mkldnn=mkldnn, cpu_threads=2, prefer_legacy=program == ".pdmodel"))
    assert predictor.program.endswith(program)
    batch = np.random.default_rng(1).random((2, 3, 75, 100), dtype=np.float32)
    out = predictor(batch)
    assert out.shape == (2, 3, 75, 100)
    np.testing.assert_allclose(out, dygraph(batch), atol=1e-4, rtol=0)
    # Another size through the same predictor (dynamic shapes).
    small = batch[:1, :, :33, :17].copy()
    np.testing.assert_allclose(predictor(small), dygraph(small), atol=1e-4, rtol=0)


def test_program_choice_by_default(exported, tmp_path):
    model_dir, _ = exported
    # Both programs present: the legacy one (memory optimisation) with oneDNN, PIR without.
    assert PaddlePredictor(model_dir).program.endswith("inference.pdmodel")
    native = PaddlePredictor(model_dir, PredictorOptions(enable_mkldnn=False)).program
    if ".json" not in program_formats():  # Paddle 2.6 wrote and runs only the .pdmodel
        assert native.endswith("inference.pdmodel")
        with pytest.raises(UserError, match="holds only the PIR program inference.json, which "
                                            "this PaddlePaddle \\(2.6\\) cannot run"):
            find_program(str(_only_json(tmp_path, FOREIGN_JSON)))
        return
    assert native.endswith("inference.json")
    assert PaddlePredictor(str(_only_json(tmp_path, model_dir))).program.endswith("inference.json")


# Paddle 3 behaviour of its PIR programs; Paddle 2.6 has no PIR program to run.
NEEDS_PIR = pytest.mark.skipif(".json" not in program_formats(),
                               reason="Paddle 2.6 writes and runs no PIR (.json) program")

# Stands for a Paddle 3 export brought to Paddle 2.6: a .json program and its parameters.
FOREIGN_JSON = None


def _only_json(tmp_path, model_dir):
    folder = tmp_path / "json"
    folder.mkdir()
    for name in ("inference.json", "inference.pdiparams"):
        if model_dir is None:
            (folder / name).write_bytes(b"")
        else:
            os.link(os.path.join(model_dir, name), folder / name)
    return folder


@pytest.mark.parametrize("mkldnn", [True, False], ids=["onednn", "native"])
def test_tiled_restore_matches_dygraph_tiled(exported, mkldnn):
    model_dir, dygraph = exported
    predictor = PaddlePredictor(model_dir, PredictorOptions(enable_mkldnn=mkldnn))
    image = np.random.default_rng(2).random((75, 100, 3), dtype=np.float32)
    got = processing.restore(predictor, image, tile=48, overlap=16)
    want = processing.restore(dygraph, image, tile=48, overlap=16)
    assert got.shape == (75, 100, 3)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_restore_files_batches_mixed_sizes_and_keeps_formats(exported, images, tmp_path):
    model_dir, dygraph = exported
    predictor = PaddlePredictor(model_dir)
    calls = []

    def runner(batch):
        calls.append(batch.shape)
        return predictor(batch)

    inputs = processing.list_images(images)
    timer = StageTimer()
    outputs = restore_files(runner, inputs, str(tmp_path), batch_size=2, timer=timer)
    assert [os.path.basename(p) for p in outputs] == ["a.png", "b.png", "c.png", "d.png"]
    # a and b share a size: one call; c and d alone. As they are: the program pads itself.
    assert calls == [(2, 3, 75, 100), (1, 3, 61, 50), (1, 3, 40, 57)]
    assert timer.images == 4 and timer.shapes == [(75, 100), (61, 50), (40, 57)]
    for src, dst in zip(inputs, outputs):
        raw_in = cv2.imread(src, cv2.IMREAD_UNCHANGED)
        raw_out = cv2.imread(dst, cv2.IMREAD_UNCHANGED)
        assert raw_out.shape == raw_in.shape and raw_out.dtype == raw_in.dtype
        rgb, info = processing.read_image(src)
        want = processing.to_storage(processing.restore(dygraph, rgb), info)
        assert np.abs(raw_out.astype(np.int64) - want.astype(np.int64)).max() <= 1
    # RGBA keeps its alpha plane untouched.
    alpha_in = cv2.imread(inputs[3], cv2.IMREAD_UNCHANGED)[:, :, 3]
    np.testing.assert_array_equal(cv2.imread(outputs[3], cv2.IMREAD_UNCHANGED)[:, :, 3], alpha_in)


def test_restore_files_rejects_bad_settings_before_writing(images, tmp_path):
    inputs = processing.list_images(images)
    out = tmp_path / "out"
    with pytest.raises(UserError, match="--batch_size must be >= 1"):
        restore_files(lambda b: b, inputs, str(out), batch_size=0)
    with pytest.raises(UserError, match="--tile_overlap must be in"):
        restore_files(lambda b: b, inputs, str(out), tile=48, tile_overlap=48)
    assert not out.exists()


def test_plan_outputs_rejects_collisions_and_overwriting_inputs(tmp_path):
    with pytest.raises(UserError, match=r"x\.jpg and .*x\.png would both be written"):
        plan_outputs([str(tmp_path / "x.jpg"), str(tmp_path / "x.png")], str(tmp_path / "out"))
    with pytest.raises(UserError, match="would overwrite its input"):
        plan_outputs([str(tmp_path / "x.png")], str(tmp_path))


@NEEDS_PIR
def test_paddle_still_refuses_memory_optim_for_pir_programs(exported):
    """What _memory_optim_supported() and the default .pdmodel on oneDNN rest on.

    When a Paddle release accepts it, this fails: let PIR programs use memory
    optimisation and measure the default program choice again.
    """
    from paddle import inference

    model_dir, _ = exported
    config = inference.Config(os.path.join(model_dir, "inference.json"),
                              os.path.join(model_dir, "inference.pdiparams"))
    config.disable_gpu()
    config.enable_mkldnn()
    config.disable_glog_info()
    config.enable_memory_optim()
    with pytest.raises(ValueError, match="pass_name"):
        inference.create_predictor(config)


@NEEDS_PIR
def test_onednn_pir_program_still_prints_to_native_stdout(exported):
    """Why quiet=True silences file descriptor 1: when this fails, that is no longer needed."""
    model_dir, _ = exported
    code = ("import sys, numpy as np; from ppmirnet.inference import PaddlePredictor, PredictorOptions; "
            "p = PaddlePredictor(sys.argv[1], PredictorOptions(prefer_legacy=False), quiet=False); "
            "p(np.zeros((1, 3, 16, 16), np.float32))")
    proc = run_cli("-c", code, model_dir)
    assert proc.returncode == 0, proc.stderr
    assert "ReduceMeanCheckIfOneDNNSupport" in proc.stdout


def test_device_errors_name_what_to_install(exported):
    model_dir, _ = exported
    if paddle.is_compiled_with_cuda():
        pytest.skip("this Paddle has CUDA: the CPU-only error cannot occur")
    with pytest.raises(MissingDependencyError, match="paddlepaddle-gpu"):
        PaddlePredictor(model_dir, PredictorOptions(use_gpu=True))
    with pytest.raises(MissingDependencyError, match="TensorRT"):
        PaddlePredictor(model_dir, PredictorOptions(use_gpu=True, use_tensorrt=True))
    with pytest.raises(UserError, match="fp16 needs --use_gpu"):
        PaddlePredictor(model_dir, PredictorOptions(precision="fp16"))
    with pytest.raises(UserError, match="8 <= min <= opt <= max"):
        PredictorOptions(use_gpu=True, use_tensorrt=True, trt_min_size=512, trt_opt_size=256)


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=f"no exported model in {tmp_path}"):
        PaddlePredictor(str(tmp_path))


def test_infer_cli_writes_outputs_and_benchmark_report(exported, images, tmp_path):
    model_dir, dygraph = exported
    out_dir, log = tmp_path / "out", tmp_path / "bench.log"
    proc = run_cli(INFER, f"--model_dir={model_dir}", f"--image_dir={images}", f"--output_dir={out_dir}",
                   "--enable_mkldnn=True", "--cpu_threads=1", "--batch_size=2", "--benchmark=True",
                   f"--save_log_path={log}")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out_dir)) == ["a.png", "b.png", "c.png", "d.png"]
    assert "ReduceMeanCheckIfOneDNNSupport" not in proc.stdout
    # --use_gpu defaults to auto, which says what it chose first.
    assert proc.stdout.startswith("device: auto -> cpu (this PaddlePaddle sees no GPU)\nrestored 4 image(s) into ")
    report = log.read_text()
    assert report in proc.stdout
    fields = dict(line.split("INFO:  ", 1)[1].split(": ", 1) for line in report.splitlines() if "INFO:  " in line)
    assert fields["runtime_device"] == "cpu"
    assert fields["enable_mkldnn"] == "True"
    assert fields["cpu_math_library_num_threads"] == "1"
    assert fields["batch_size"] == "2"
    assert fields["data_num"] == "4"
    assert fields["precision"] == "fp32"
    assert fields["model_name"] == "MIRNet"
    assert fields["input_shape"] == "3x75x100, 3x61x50, 3x40x57"
    assert float(fields["cpu_rss(MB)"]) > 50
    assert fields["gpu_rss(MB)"] == "None"
    for key in ("preprocess_time(ms)", "inference_time(ms)", "postprocess_time(ms)"):
        assert float(fields[key]) > 0
    # Same pixels as the dygraph model through the shared processing.
    rgb, info = processing.read_image(os.path.join(images, "a.png"))
    want = processing.to_storage(processing.restore(dygraph, rgb), info)
    got = cv2.imread(str(out_dir / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_infer_cli_tiled_legacy_native_and_log_redirected_to_itself(exported, images, tmp_path):
    """TIPC runs ``infer.py ... --save_log_path=F > F``: F must keep all of stdout."""
    model_dir, dygraph = exported
    log = tmp_path / "tipc.log"
    cmd = [sys.executable, INFER, f"--model_dir={model_dir}", f"--image_dir={images}/a.png",
           f"--output_dir={tmp_path / 'out'}", "--enable_mkldnn=False", "--legacy_program=True",
           "--tile=48", "--tile_overlap=16", "--benchmark=True", f"--save_log_path={log}"]
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                            env=dict(os.environ, GLOG_minloglevel="2")).returncode
    text = log.read_text()
    assert rc == 0, text
    assert "restored 1 image(s)" in text and "inference.pdmodel" in text
    assert "enable_mkldnn: False" in text and "tile: 48" in text
    rgb, info = processing.read_image(os.path.join(images, "a.png"))
    want = processing.to_storage(processing.restore(dygraph, rgb, tile=48, overlap=16), info)
    got = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("flags, message", [
    (["--use_gpu=True"], "needs a GPU build of PaddlePaddle"),
    (["--use_tensorrt=True"], "--use_tensorrt=True needs a GPU build of PaddlePaddle"),
    (["--tile=30"], "--tile must be 0 or a positive multiple of 8"),
    (["--tile=-1"], "--tile must be 0 or a positive multiple of 8, got -1"),
])
def test_infer_cli_errors_are_one_line_and_exit_1(exported, images, tmp_path, flags, message):
    if "--use_gpu=True" in flags or "--use_tensorrt=True" in flags:
        if paddle.is_compiled_with_cuda():
            pytest.skip("this Paddle has CUDA: the CPU-only error cannot occur")
    model_dir, _ = exported
    proc = run_cli(INFER, f"--model_dir={model_dir}", f"--image_dir={images}",
                   f"--output_dir={tmp_path / 'out'}", *flags)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_infer_cli_restores_every_readable_image_and_lists_the_others(exported, images, tmp_path):
    model_dir, _ = exported
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "c.png"):
        (src / name).write_bytes((Path(images) / name).read_bytes())
    (src / "b.png").write_bytes(b"")
    out = tmp_path / "out"
    proc = run_cli(INFER, f"--model_dir={model_dir}", f"--image_dir={src}", f"--output_dir={out}",
                   "--benchmark=True")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert sorted(os.listdir(out)) == ["a.png", "c.png"]
    assert "restored 2 image(s)" in proc.stdout and "ppmirnet INFO:" in proc.stdout
    assert proc.stderr.splitlines()[-2:] == ["error: 1 of 3 image(s) could not be restored (2 written):",
                                             f"  cannot read {src / 'b.png'} as an image"]


def test_infer_cli_refuses_the_input_folder_as_output(exported, images, tmp_path):
    model_dir, _ = exported
    proc = run_cli(INFER, f"--model_dir={model_dir}", f"--image_dir={images}", f"--output_dir={images}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: output ")
    assert "would overwrite its input" in proc.stderr


def test_infer_cli_missing_inputs(tmp_path):
    proc = run_cli(INFER, f"--model_dir={tmp_path}", f"--image_dir={tmp_path / 'none'}",
                   f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"error: input not found: {tmp_path / 'none'}"


def test_report_layout_and_save(tmp_path):
    timer = StageTimer()
    timer.images = 4
    for stage, seconds in (("preprocess", 0.004), ("inference", 2.0), ("postprocess", 0.008)):
        timer.add(stage, seconds)
    engine = dict(runtime_device="cpu", ir_optim=True, enable_memory_optim=False, enable_tensorrt=False,
                  enable_mkldnn=True, cpu_math_library_num_threads=2, program="inference.json",
                  precision="fp32", runtime="paddle_inference")
    text = format_report(build_report(engine, timer, "MIRNet", 1, [(256, 256)]))
    assert "ppmirnet INFO:  preprocess_time(ms): 1.0000" in text
    assert "ppmirnet INFO:  inference_time(ms): 500.0000" in text
    assert "ppmirnet INFO:  postprocess_time(ms): 2.0000" in text
    assert "ppmirnet INFO:  input_shape: 3x256x256" in text
    assert f"ppmirnet INFO:  paddle_version: {paddle.__version__}" in text
    path = tmp_path / "r.log"
    save_report(text, str(path))
    assert path.read_text() == text

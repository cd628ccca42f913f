"""TIPC configs and helpers: line layout, the shell parsers, step counting, data staging."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIPC = os.path.join(ROOT, "test_tipc")
TRAIN_CONFIG = os.path.join(TIPC, "configs", "MIRNet", "train_infer_python.txt")
SERVING_CONFIG = os.path.join(TIPC, "configs", "MIRNet", "serving_infer_python.txt")
ONNX_CONFIG = os.path.join(TIPC, "configs", "MIRNet", "paddle2onnx_infer_python.txt")
OPENVINO_CONFIG = os.path.join(TIPC, "configs", "MIRNet", "openvino_infer_python.txt")
SR_TRAIN_CONFIG = os.path.join(TIPC, "configs", "MIRNet_SR", "train_infer_python.txt")
V2_TRAIN_CONFIG = os.path.join(TIPC, "configs", "MIRNetV2", "train_infer_python.txt")

sys.path.insert(0, TIPC)
import check_results  # noqa: E402
import sidd_blocks_to_png  # noqa: E402


def config_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def bash(script, *args):
    """Run ``script`` in bash with common_func.sh sourced; return stdout."""
    full = f"source {TIPC}/common_func.sh\n{script}"
    done = subprocess.run(["bash", "-c", full, "bash", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


# ------------------------------------------------------------------ layout

# Keys at fixed line numbers (0-based) that the TIPC scripts, and Paddle's own
# tooling, read blind.
TRAIN_KEYS = {
    1: "model_name", 2: "python", 3: "gpu_list", 10: "train_model_name", 11: "train_infer_img_dir",
    14: "trainer", 15: "norm_train", 16: "pact_train", 17: "fpgm_train", 18: "distill_train",
    23: "eval", 29: "norm_export", 30: "quant_export", 31: "fpgm_export", 32: "distill_export",
    33: "export1", 34: "export2", 36: "infer_model", 37: "infer_export", 38: "infer_quant",
    39: "inference", 40: "--use_gpu", 41: "--enable_mkldnn", 42: "--cpu_threads", 43: "--batch_size",
    44: "--use_tensorrt", 45: "--precision", 46: "--model_dir", 47: "--image_dir", 48: "--save_log_path",
    49: "--benchmark",
}


def test_train_config_line_layout():
    lines = config_lines(TRAIN_CONFIG)
    assert len(lines) == 51
    assert lines[0] == "=" * 27 + "train_params" + "=" * 27
    assert lines[22] == "=" * 27 + "eval_params" + "=" * 27
    assert lines[26] == "=" * 27 + "infer_params" + "=" * 27
    for index in (13, 21, 25, 35):
        assert lines[index] == "##", index
    for index in (12, 19, 20, 24, 50):
        assert lines[index] == "null:null", index
    for index, key in TRAIN_KEYS.items():
        assert lines[index].split(":", 1)[0] == key, (index, lines[index])
    assert lines[1] == "model_name:MIRNet"
    assert lines[4].startswith("-o Global.device:")
    assert lines[5] == "-o Global.auto_cast:null|amp"
    assert lines[14] == "trainer:norm_train"
    assert lines[39].startswith("inference:deploy/inference/infer.py ")
    assert lines[48] == "--save_log_path:null"
    assert lines[49] == "--benchmark:True"


def test_serving_config_line_layout():
    lines = config_lines(SERVING_CONFIG)
    assert len(lines) == 18
    assert lines[0] == "=" * 27 + "serving_params" + "=" * 27
    keys = [line.split(":", 1)[0] for line in lines[1:]]
    assert keys == ["model_name", "python", "trans_model", "--dirname", "--model_filename", "--params_filename",
                    "--serving_server", "--serving_client", "serving_dir", "web_service",
                    "op.mirnet.local_service_conf.devices", "null", "null", "null", "null", "pipline",
                    "--image_path"]


def test_paddle2onnx_config_line_layout():
    lines = config_lines(ONNX_CONFIG)
    assert len(lines) == 13
    assert lines[0] == "=" * 27 + "paddle2onnx_params" + "=" * 27
    keys = [line.split(":", 1)[0] for line in lines[1:]]
    assert keys == ["model_name", "python", "2onnx", "--model_dir", "null", "null", "--save_file",
                    "--opset_version", "null", "inference", "--onnx_file", "--image_dir"]
    # the ONNX file the inference reads is the one the conversion writes
    assert lines[7].split(":", 1)[1] == lines[11].split(":", 1)[1]


def test_openvino_config_line_layout():
    lines = config_lines(OPENVINO_CONFIG)
    assert len(lines) == 12
    assert lines[0] == "=" * 27 + "openvino_params" + "=" * 27
    keys = [line.split(":", 1)[0] for line in lines[1:]]
    assert keys == ["model_name", "python", "export", "-c", "-o Global.pretrained_model", "--save_dir",
                    "--for_openvino", "inference", "--model", "--image_dir", "--cpu_threads"]
    # the model the inference reads is the one the export writes
    assert lines[6].split(":", 1)[1] == lines[9].split(":", 1)[1]


def test_gpu_list_pairs_with_device_values():
    cfg = check_results.ConfigLines(TRAIN_CONFIG)
    gpus, devices = cfg.values(3), cfg.values(4)
    assert len(gpus) == len(devices)
    for gpu, device in zip(gpus, devices):
        assert (device == "cpu") == (gpu == "-1"), (gpu, device)
    assert "-1" in gpus and "0" in gpus and "0,1" in gpus


# ------------------------------------------------------------ shell parsers


def test_func_parser_key_value_split_on_first_colon():
    out = bash('func_parser_key "$1"; func_parser_value "$1"; func_parser_value "$2"',
               "infer_model:http://host:8080/w.pdparams", "nocolon")
    assert out.splitlines() == ["infer_model", "http://host:8080/w.pdparams", ""]


def test_func_parser_params_picks_the_mode_value():
    lines = config_lines(TRAIN_CONFIG)
    script = 'for m in lite_train_lite_infer whole_train_whole_infer whole_infer; do echo "[$(func_parser_params "$1" $m)]"; done'
    assert bash(script, lines[6]).splitlines() == ["[1]", "[60]", "[]"]
    # Per card: 8 x 2 cards = the paper's batch of 16 on the 2-card line.
    assert bash(script, lines[8]).splitlines() == ["[2]", "[8]", "[]"]


def test_func_set_params_leaves_out_null():
    out = bash('echo "[$(func_set_params "-o Global.epochs" 1)]"; echo "[$(func_set_params null 1)]";'
               'echo "[$(func_set_params --x null)]"; echo "[$(func_set_params --x "")]"')
    assert out.splitlines() == ["[-o Global.epochs=1]", "[ ]", "[ ]", "[ ]"]


def test_status_check_and_skip_line_format(tmp_path):
    log = tmp_path / "results.log"
    bash('status_check 0 "python a.py" "$1" >/dev/null; status_check 3 "python b.py" "$1" >/dev/null;'
         'status_skip "no GPU" "python c.py" "$1" >/dev/null', str(log))
    assert log.read_text().splitlines() == [
        "Run successfully with command - python a.py!",
        "Run failed with command - python b.py!",
        "Run skipped (no GPU) with command - python c.py!",
    ]


def test_card_count():
    out = bash('for g in -1 0 3 0,1 0,1,2,3 "10.0.0.1,10.0.0.2;0,1"; do func_card_count "$g"; done')
    assert out.split() == ["0", "1", "1", "2", "4", "2"]


# ------------------------------------------------------------ step counting


def test_expected_cpu_steps_of_each_mode():
    # lite: train + eval + export + oneDNN {on, off} x threads {1, 2} (fp32; fp16 is TensorRT only)
    assert check_results.expected_steps(TRAIN_CONFIG, "lite_train_lite_infer") == 7
    assert check_results.expected_steps(TRAIN_CONFIG, "lite_train_whole_infer") == 7
    # whole_infer: export of the trained weights + the same 4 inference runs
    assert check_results.expected_steps(TRAIN_CONFIG, "whole_infer") == 5
    # full training runs on GPUs only
    assert check_results.expected_steps(TRAIN_CONFIG, "whole_train_whole_infer") == 0
    # serving: conversion, then start, client and stop for the CPU entry
    assert check_results.expected_steps(SERVING_CONFIG, "serving_infer") == 4
    # ONNX: conversion + onnxruntime inference
    assert check_results.expected_steps(ONNX_CONFIG, "paddle2onnx_infer") == 2
    # OpenVINO: export for OpenVINO + OpenVINO inference
    assert check_results.expected_steps(OPENVINO_CONFIG, "openvino_infer") == 2
    # the other models' chains run the same grid
    for config in (SR_TRAIN_CONFIG, V2_TRAIN_CONFIG):
        assert check_results.expected_steps(config, "lite_train_lite_infer") == 7
        assert check_results.expected_steps(config, "whole_infer") == 5


def _log(tmp_path, success, failed=0, skipped=2):
    path = tmp_path / "results_python.log"
    lines = [f"Run successfully with command - step {i}!" for i in range(success)]
    lines += [f"Run failed with command - bad {i}!" for i in range(failed)]
    lines += [f"Run skipped (no GPU on this machine) with command - gpu {i}!" for i in range(skipped)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_check_passes_only_on_the_exact_count_without_failures(tmp_path):
    mode = "lite_train_lite_infer"
    ok, message = check_results.check(TRAIN_CONFIG, mode, _log(tmp_path, 7))
    assert ok and message.endswith("PASS")
    assert "7 succeeded, 0 failed, 2 skipped" in message
    ok, message = check_results.check(TRAIN_CONFIG, mode, _log(tmp_path, 6))
    assert not ok and "fewer steps" in message
    ok, message = check_results.check(TRAIN_CONFIG, mode, _log(tmp_path, 7, failed=1))
    assert not ok and "a step failed" in message
    ok, message = check_results.check(TRAIN_CONFIG, mode, _log(tmp_path, 8))
    assert not ok and "more steps" in message
    ok, message = check_results.check(TRAIN_CONFIG, mode, str(tmp_path / "absent.log"))
    assert not ok and "not found" in message


def test_check_results_command_line_exit_codes(tmp_path):
    script = os.path.join(TIPC, "check_results.py")
    base = [sys.executable, script, "--config", TRAIN_CONFIG, "--mode", "lite_train_lite_infer"]
    good = subprocess.run(base + ["--log", _log(tmp_path, 7)], capture_output=True, text=True)
    assert good.returncode == 0 and "PASS" in good.stdout
    bad = subprocess.run(base + ["--log", _log(tmp_path, 3)], capture_output=True, text=True)
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    count = subprocess.run(base + ["--expected_only"], capture_output=True, text=True)
    assert count.stdout.strip() == "7"


# ------------------------------------------------- flags accepted by the tools


def test_every_inference_flag_is_accepted_by_infer_py():
    import importlib.util

    # loaded under its own name: other tests may import deploy/onnx/infer.py as "infer"
    spec = importlib.util.spec_from_file_location("tipc_paddle_infer", os.path.join(ROOT, "deploy", "inference", "infer.py"))
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    cfg = check_results.ConfigLines(TRAIN_CONFIG)
    argv = []
    for index in range(40, 50):
        key = cfg.key(index)
        value = cfg.values(index)[0]
        if key != "null" and value not in ("", "null"):
            argv.append(f"{key}={value}")
    argv += [f"{cfg.key(46)}=some/model", f"{cfg.key(47)}=some/images"]
    argv += cfg.value(39).split()[1:]  # flags given with the script
    args = infer.parse_args(argv)
    assert args.output_dir.startswith("./test_tipc/output/")
    assert args.use_gpu is True and args.enable_mkldnn is True and args.cpu_threads == 1
    assert args.batch_size == 1 and args.use_tensorrt is False and args.precision == "fp32"
    assert args.benchmark is True and args.model_dir == "some/model"
    for precision in cfg.values(45):
        assert infer.parse_args(argv + [f"--precision={precision}"]).precision == precision


def test_every_train_override_is_a_known_config_key():
    from ppmirnet.config import load_config

    cfg = check_results.ConfigLines(TRAIN_CONFIG)
    overrides = ["Global.device=cpu", "Global.auto_cast=amp", "Global.epochs=1", "Global.output_dir=out",
                 "DataLoader.Train.sampler.batch_size=2", "Global.pretrained_model=out/latest",
                 "Global.save_inference_dir=out/infer", "Global.seed=42"]
    # the keys the config lines pass with -o
    for index in (4, 5, 6, 7, 8, 9, 27, 28):
        assert cfg.key(index).startswith("-o "), index
        key = cfg.key(index)[3:]
        assert any(o.startswith(key + "=") for o in overrides), key
    resolved = load_config(os.path.join(ROOT, "configs", "mirnet_lite.yaml"), overrides)
    assert resolved["Global"]["epochs"] == 1
    assert resolved["DataLoader"]["Train"]["sampler"]["batch_size"] == 2
    assert resolved["Global"]["auto_cast"] == "amp"


def test_every_v2_train_override_is_a_known_config_key():
    """MIRNet-v2 trains by iterations: its lite modes stop the lite recipe early, its full mode runs it all."""
    from ppmirnet.config import load_config

    cfg = check_results.ConfigLines(V2_TRAIN_CONFIG)
    for mode, config, stop in (("lite_train_lite_infer", "mirnetv2_lite.yaml", 20),
                               ("whole_train_whole_infer", "mirnetv2_sidd.yaml", None)):
        overrides = [f"{cfg.key(4)[3:]}=cpu", f"{cfg.key(7)[3:]}=out", f"{cfg.key(9)[3:]}=out/latest",
                     f"{cfg.key(27)[3:]}=out/infer"]
        for index in (6, 8):
            value = cfg.mode_value(index, mode)
            if value != "null":
                overrides.append(f"{cfg.key(index)[3:]}={value}")
        resolved = load_config(os.path.join(ROOT, "configs", config), overrides)
        assert resolved["Global"]["max_iters"] == stop, mode
        # the sampler's batch stays the largest progressive one, as the config requires
        train = resolved["DataLoader"]["Train"]
        assert train["sampler"]["batch_size"] == max(train["progressive"]["batch_sizes"]) == 8
    # 20 iterations: one logged step (the benchmark fields), still in the first progressive stage
    lite = load_config(os.path.join(ROOT, "configs", "mirnetv2_lite.yaml"))
    assert lite["Global"]["print_batch_step"] <= 20 < lite["DataLoader"]["Train"]["progressive"]["iters"][0]


# ---------------------------------------------------------- SIDD staging


def test_sidd_blocks_to_png_writes_the_first_blocks_in_rgb(tmp_path):
    import cv2
    import scipy.io

    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, size=(3, 4, 16, 24, 3), dtype=np.uint8)
    mat = tmp_path / "ValidationNoisyBlocksSrgb.mat"
    scipy.io.savemat(str(mat), {"ValidationNoisyBlocksSrgb": blocks})
    out = tmp_path / "png"
    sidd_blocks_to_png.main(["--mat", str(mat), "--out_dir", str(out), "--blocks_per_image", "2"])
    names = sorted(os.listdir(out))
    assert names == ["00_00.png", "00_01.png", "01_00.png", "01_01.png", "02_00.png", "02_01.png"]
    back = cv2.imread(str(out / "02_01.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    np.testing.assert_array_equal(back, blocks[2, 1])


def test_sidd_blocks_to_png_errors_name_the_file(tmp_path):
    from ppmirnet.errors import UserError

    with pytest.raises(UserError, match="file not found: .*nothere.mat"):
        sidd_blocks_to_png.main(["--mat", str(tmp_path / "nothere.mat"), "--out_dir", str(tmp_path)])
    import scipy.io

    bad = tmp_path / "bad.mat"
    scipy.io.savemat(str(bad), {"x": np.zeros((4, 4))})
    with pytest.raises(UserError, match="no \\(images, blocks, H, W, 3\\) array"):
        sidd_blocks_to_png.main(["--mat", str(bad), "--out_dir", str(tmp_path)])


# ------------------------------------------------------------- the scripts


@pytest.mark.parametrize("script", ["test_train_inference_python.sh", "prepare.sh"])
def test_scripts_refuse_an_unknown_mode(script):
    done = subprocess.run(["bash", os.path.join(TIPC, script), TRAIN_CONFIG, "klquant_whole_infer"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown MODE 'klquant_whole_infer'" in done.stderr


def _bare_tree(tmp_path):
    """A copy of prepare.sh (and what it sources) in an empty tree: no data, configs or weights."""
    tree = tmp_path / "repo"
    (tree / "test_tipc").mkdir(parents=True)
    for name in ("prepare.sh", "common_func.sh"):
        (tree / "test_tipc" / name).write_text(open(os.path.join(TIPC, name)).read())
    return tree


def _prepare(tree, config, mode, timeout=120, cwd=None):
    """Run the tree's prepare.sh on ``config`` in ``mode``."""
    env = dict(os.environ, TIPC_PYTHON=sys.executable, PYTHONPATH=ROOT)
    return subprocess.run(["bash", str(tree / "test_tipc" / "prepare.sh"), config, mode],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def test_prepare_whole_modes_say_what_to_put_where(tmp_path):
    # Run on a copy of the scripts in an empty tree: no data/SIDD there.
    tree = _bare_tree(tmp_path)
    messages = {}
    for mode in ("whole_infer", "whole_train_whole_infer", "lite_train_whole_infer"):
        done = _prepare(tree, TRAIN_CONFIG, mode)
        assert done.returncode == 1, (mode, done.stdout, done.stderr)
        messages[mode] = done.stderr
    assert "ValidationNoisyBlocksSrgb.mat" in messages["whole_infer"]
    assert "data/SIDD/val/" in messages["whole_infer"]
    assert "data/SIDD/train/input/" in messages["whole_train_whole_infer"]
    assert "tools/prepare_sidd.py" in messages["whole_train_whole_infer"]
    assert "data/SIDD/val/" in messages["lite_train_whole_infer"]
    assert not (tree / "test_tipc" / "data").exists()



def test_sr_chain_is_the_denoising_chain_on_its_own_model_folders():
    sr, dn = config_lines(SR_TRAIN_CONFIG), config_lines(TRAIN_CONFIG)
    assert len(sr) == len(dn) and sr[1] == "model_name:MIRNet_SR"
    for a, b in zip(sr, dn):
        assert a.replace("MIRNet_SR", "MIRNet").replace("mirnet_realsr_x4", "mirnet_sidd") == b


def test_v2_chain_is_the_denoising_chain_on_its_own_model_folders():
    v2, dn = config_lines(V2_TRAIN_CONFIG), config_lines(TRAIN_CONFIG)
    assert len(v2) == len(dn) and v2[1] == "model_name:MIRNetV2"
    # iteration-based: a stop after 20 iterations in the lite modes instead of one epoch
    assert v2[6] == ("-o Global.max_iters:lite_train_lite_infer=20|lite_train_whole_infer=20|"
                     "whole_train_whole_infer=null")
    assert v2[8] == ("-o DataLoader.Train.sampler.batch_size:lite_train_lite_infer=8|"
                     "lite_train_whole_infer=8|whole_train_whole_infer=8")
    for index, (a, b) in enumerate(zip(v2, dn)):
        if index not in (6, 8):
            assert a.replace("MIRNetV2", "MIRNet").replace("mirnetv2_sidd", "mirnet_sidd") == b, index


def test_prepare_v2_modes_stage_the_v2_configs_and_name_its_weights(tmp_path):
    tree = _bare_tree(tmp_path)

    def prepare(mode):
        return _prepare(tree, V2_TRAIN_CONFIG, mode)

    done = prepare("whole_train_whole_infer")
    assert done.returncode == 1 and "data/SIDD/train/input/" in done.stderr
    # With the SIDD validation files in place, whole_infer asks for the converted MIRNet-v2 weights.
    (tree / "data" / "SIDD" / "val").mkdir(parents=True)
    for name in ("ValidationNoisyBlocksSrgb.mat", "ValidationGtBlocksSrgb.mat"):
        (tree / "data" / "SIDD" / "val" / name).write_bytes(b"")
    done = prepare("whole_infer")
    assert done.returncode == 1
    assert "the trained MIRNetV2 weights are missing" in done.stderr
    assert "--src real_denoising.pth --dst pretrained/mirnetv2_sidd.pdparams" in done.stderr
    assert not (tree / "test_tipc" / "data").exists()
    # With them, it stages the MIRNet-v2 SIDD config (absent from this bare tree).
    (tree / "pretrained").mkdir()
    (tree / "pretrained" / "mirnetv2_sidd.pdparams").write_bytes(b"")
    done = prepare("whole_infer")
    assert done.returncode == 1
    assert "training config not found: configs/mirnetv2_sidd.yaml" in done.stderr


def test_prepare_sr_modes_stage_the_sr_configs_and_name_realsr(tmp_path):
    tree = _bare_tree(tmp_path)
    messages = {}
    for mode in ("whole_infer", "whole_train_whole_infer", "lite_train_whole_infer"):
        done = _prepare(tree, SR_TRAIN_CONFIG, mode)
        assert done.returncode == 1, (mode, done.stdout, done.stderr)
        messages[mode] = done.stderr
    assert "data/RealSR/x4/test" in messages["whole_infer"]
    assert "--dataset realsr --scale 4 --split Test" in messages["whole_infer"]
    assert "data/RealSR/x4/train" in messages["whole_train_whole_infer"]
    assert "data/RealSR/x4/test" in messages["lite_train_whole_infer"]
    # The lite mode makes the x4 lite set and stages the lite SR config.
    (tree / "tools").mkdir()
    for name in ("make_lite_data.py", "_bootstrap.py"):
        (tree / "tools" / name).write_text(open(os.path.join(ROOT, "tools", name)).read())
    done = _prepare(tree, SR_TRAIN_CONFIG, "lite_train_lite_infer", timeout=300, cwd=str(tree))
    assert "training config not found: configs/mirnet_lite_sr.yaml" in done.stderr
    with open(tree / "data" / "lite_sr_x4" / "lite.json") as f:
        import json

        summary = json.load(f)
    assert summary["task"] == "sr" and summary["scale"] == 4


def test_chain_refuses_a_mode_prepare_did_not_stage(tmp_path):
    tree = tmp_path / "repo"
    (tree / "test_tipc" / "data" / "MIRNet").mkdir(parents=True)
    for name in ("test_train_inference_python.sh", "common_func.sh"):
        (tree / "test_tipc" / name).write_text(open(os.path.join(TIPC, name)).read())
    script = str(tree / "test_tipc" / "test_train_inference_python.sh")
    (tree / "test_tipc" / "data" / "MIRNet" / "prepared_train_mode").write_text("whole_infer\n")
    done = subprocess.run(["bash", script, TRAIN_CONFIG, "lite_train_lite_infer"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not prepared for lite_train_lite_infer (it is for whole_infer)" in done.stderr
    assert "bash test_tipc/prepare.sh" in done.stderr
    assert not (tree / "test_tipc" / "output").exists() or not list((tree / "test_tipc" / "output").rglob("*.log"))


def test_train_log_check_needs_every_benchmark_field(tmp_path):
    good = tmp_path / "good.log"
    good.write_text("[Train] epoch: 1/1, iter: 6/72, loss: 0.08656, lr: 0.001667, batch_cost: 0.28217 s, "
                    "reader_cost: 0.00954 s, ips: 7.09 samples/s\n")
    ok, _ = check_results.check_train_log(str(good))
    assert ok
    bad = tmp_path / "bad.log"
    bad.write_text("[Train] epoch: 1/1, iter: 6/72, loss: 0.08656, lr: 0.001667, batch_cost: 0.28217 s\n")
    ok, message = check_results.check_train_log(str(bad))
    assert not ok and "reader_cost:" in message
    ok, message = check_results.check_train_log(str(tmp_path / "none.log"))
    assert not ok and "not found" in message

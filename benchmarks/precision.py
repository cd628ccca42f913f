"""Lower precisions against float32: PSNR change on the lite tasks, speed on the default networks.

    python benchmarks/precision.py --weights output/mirnet_lite/best_model.pdparams -c configs/mirnet_lite.yaml
    python benchmarks/precision.py --speed_model /tmp/mirnet-bench-v2     # a run_benchmark.py --work_dir

Variants: OpenVINO with ``INFERENCE_PRECISION_HINT`` bf16; int8 by
onnxruntime's static quantization (QDQ, per-channel int8 weights, uint8
activations, calibrated on the task's training inputs) run in onnxruntime
and in OpenVINO (which executes a QDQ model in int8). Each is compared with
OpenVINO float32 on the validation set of the config (PSNR with the
config's ``Metric`` protocol). With ``--speed_model`` the same variants are
timed on that benchmark folder's default network at ``--size``. Prints one
line per measurement and a JSON line ``RESULT {...}`` at the end.
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

OPSET = 13  # quantize_static's QDQ needs opset >= 13


def _export_onnx(model, folder):
    from ppmirnet.export import export_inference_model
    from ppmirnet.inference.onnx_runtime import export_onnx

    export_inference_model(model, folder)
    return export_onnx(folder, os.path.join(folder, "model.onnx"), opset_version=OPSET)


def _quantize(onnx_file, calibration, out_file):
    try:
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
    except ImportError as err:  # onnxruntime's quantization imports ml_dtypes, not a dependency of it
        sys.exit(f"error: onnxruntime.quantization cannot be imported ({err}): pip install ml_dtypes")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            batch = next(self.items, None)
            return None if batch is None else {"x": batch}

    quantize_static(onnx_file, out_file, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    return out_file


def _runners(onnx_file, int8_file, threads):
    from ppmirnet.inference.onnx_runtime import OnnxPredictor
    from ppmirnet.inference.openvino_runtime import OpenVinoPredictor

    return {
        "OpenVINO fp32": OpenVinoPredictor(onnx_file, threads),
        "OpenVINO bf16 hint": OpenVinoPredictor(onnx_file, threads, precision="bf16"),
        "onnxruntime fp32": OnnxPredictor(onnx_file, threads),
        "onnxruntime int8 (QDQ)": OnnxPredictor(int8_file, threads),
        # Not run: OpenVINO 2026.4.1 compiling this QDQ model ended the process with
        # SIGSEGV (AMD EPYC with Paddle in the process; Intel Xeon with AMX without it).
    }


def _pairs(root):
    inputs = sorted(glob.glob(os.path.join(root, "input", "*.png")))
    return [(p, os.path.join(root, "groundtruth", os.path.basename(p))) for p in inputs]


def quality(weights, config, threads, log):
    """PSNR of every variant on the config's validation set."""
    import paddle

    from ppmirnet import processing
    from ppmirnet.config import load_config
    from ppmirnet.metrics import image_metrics, protocol_of
    from ppmirnet.restorer import load_dygraph_model

    paddle.set_device("cpu")
    cfg = load_config(config)
    model, _ = load_dygraph_model(weights, cfg)
    protocol = protocol_of(cfg.get("Metric"))
    loaders = cfg["DataLoader"]
    val = _pairs(os.path.join(loaders["Eval"]["dataset"]["root"], loaders["Eval"]["dataset"]["split"]))
    train = _pairs(os.path.join(loaders["Train"]["dataset"]["root"], loaders["Train"]["dataset"]["split"]))
    if not val or not train:
        sys.exit(f"error: {config}: no image pairs under {loaders['Train']['dataset']['root']}: "
                 f"train the config once (a lite config generates its set) and run from that folder")
    calibration = [processing.to_batch([processing.read_image(p)[0]]) for p, _ in train[:8]]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_file = _export_onnx(model, tmp)
        results = {}
        # One size per quantized model: the calibration images' size.
        int8 = _quantize(onnx_file, calibration, os.path.join(tmp, "int8.onnx"))
        for name, runner in _runners(onnx_file, int8, threads).items():
            scores = []
            for src, gt in val:
                image = processing.read_image(src)[0]
                out = processing.restore(runner, image)
                scores.append(image_metrics(out, processing.read_image(gt)[0], ["psnr"], **protocol)["psnr"])
            results[name] = float(np.mean(scores))
            log(f"{config}: {name}: PSNR {results[name]:.3f} dB on {len(val)} validation images")
    return results


def speed(model_dir, size, threads, repeats, log):
    """Seconds per ``size`` x ``size`` image of every variant on a benchmark folder's network."""
    import paddle

    from ppmirnet.modeling import build_model

    with open(os.path.join(model_dir, "arch.json")) as f:
        arch = {"name": "MIRNet", **json.load(f)}
    paddle.set_device("cpu")
    model = build_model(arch)
    model.set_state_dict(paddle.load(os.path.join(model_dir, "model.pdparams")))
    model.eval()
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, size, size), dtype=np.float32)
    calibration = [rng.random((1, 3, size, size), dtype=np.float32) for _ in range(2)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_file = _export_onnx(model, tmp)
        int8 = _quantize(onnx_file, calibration, os.path.join(tmp, "int8.onnx"))
        for name, runner in _runners(onnx_file, int8, threads).items():
            runner(x)  # compiles, prepares kernels
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                runner(x)
                times.append(time.perf_counter() - start)
            results[name] = min(times)
            log(f"{arch['name']} {size}x{size}: {name}: {min(times):.2f} s (best of {repeats}; "
                f"load {os.getloadavg()[0]:.1f})")
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", action="append", default=[], help="trained lite weights (repeatable)")
    p.add_argument("-c", "--config", action="append", default=[], help="their configs, in the same order")
    p.add_argument("--speed_model", action="append", default=[],
                   help="a benchmarks/run_benchmark.py --work_dir (repeatable)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    log = lambda line: print(line, flush=True)  # noqa: E731
    result = {"quality": {}, "speed": {}}
    for weights, config in zip(args.weights, args.config):
        result["quality"][config] = quality(weights, config, args.threads, log)
    for model_dir in args.speed_model:
        result["speed"][model_dir] = speed(model_dir, args.size, args.threads, args.repeats, log)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()

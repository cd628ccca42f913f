"""Measure peak memory per pixel of each engine and fit the table of :mod:`ppmirnet.memory`.

    python benchmarks/memory_model.py                      # measure, fit, print, write the table
    python benchmarks/memory_model.py --engines dygraph --sizes 96,160,224 --no-write

For every network (the default MIRNet and MIRNet-v2, and a narrow variant of
each, n_feat 16) and engine (dygraph, Paddle Inference with oneDNN on the
``.pdmodel``, onnxruntime, OpenVINO on the ONNX export with an f32 precision
hint) it runs one image at each size in a fresh child process (random
weights, 2 threads) and reads the child's peak RSS (VmHWM). Per (network,
engine) a line ``peak = fixed + per_pixel * pixels`` is fitted by least
squares; per (family, engine) the two widths then give

    per_pixel = a * width + b        width = n_feat * sum_i (chan_factor^i / 4^i)
    fixed     = base + m * parameter bytes
    overhead  = base' + m' * parameter bytes   (peak - loaded - per_pixel * pixels)

``fixed`` predicts a fresh process; ``overhead`` is what a running process
adds to its own resident memory once the engine is loaded (the libraries'
share of ``fixed`` differs between machines, so runs read it off themselves).
(``width`` is the feature channels per input pixel summed over the scales: a
level i holds n_feat * chan_factor^i channels on 1/4^i of the pixels).
The fitted coefficients, the raw measurements, the machine and the date are
written to ``ppmirnet/memory_table.py``.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

ENGINES = ("dygraph", "paddle-inference", "onnx", "openvino")
NETWORKS = {
    "MIRNet": [{"name": "MIRNet"}, {"name": "MIRNet", "n_feat": 16}],
    "MIRNetV2": [{"name": "MIRNetV2"}, {"name": "MIRNetV2", "n_feat": 16}],
}
TABLE = os.path.join(ROOT, "ppmirnet", "memory_table.py")


def vm_hwm():
    """Peak resident memory of this process so far, in bytes (Linux VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(spec):
    """Run one engine on one ``size`` x ``size`` image; print the peak RSS as JSON."""
    engine, size, threads = spec["engine"], spec["size"], spec["threads"]
    arch = spec["arch"]
    channels = arch.get("in_channels", 3)
    batch = np.random.RandomState(0).rand(1, channels, size, size).astype(np.float32)
    if engine == "dygraph":
        import paddle

        from ppmirnet.engine.dygraph import DygraphRunner
        from ppmirnet.engine.env import set_device
        from ppmirnet.modeling import build_model

        set_device("cpu", threads)
        paddle.seed(0)
        runner = DygraphRunner(build_model(arch))
    elif engine == "paddle-inference":
        from ppmirnet.inference import PaddlePredictor, PredictorOptions

        runner = PaddlePredictor(spec["model_dir"], PredictorOptions(cpu_threads=threads), quiet=True)
    elif engine == "onnx":
        from ppmirnet.inference.onnx_runtime import OnnxPredictor

        runner = OnnxPredictor(spec["onnx_file"], threads)
    else:
        import openvino as ov

        compiled = ov.Core().compile_model(spec["onnx_file"], "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})

        def runner(x):
            return compiled(x)[0]
    loaded = vm_hwm()
    out = runner(batch)
    assert out.shape[2:] == batch.shape[2:]
    print(json.dumps({"loaded": loaded, "peak": vm_hwm()}))


def measure(spec):
    env = dict(os.environ, GLOG_minloglevel="2", OMP_NUM_THREADS=str(spec["threads"]),
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{spec}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def export(arch, folder):
    """Random-weight export of ``arch``: ``(model_dir, onnx_file, parameter bytes)``."""
    import paddle

    from ppmirnet.export import export_inference_model
    from ppmirnet.inference.onnx_runtime import export_onnx
    from ppmirnet.modeling import build_model

    paddle.seed(0)
    model = build_model(arch)
    params = sum(int(np.prod(p.shape)) * 4 for p in model.parameters())
    model_dir = os.path.join(folder, "paddle")
    export_inference_model(model, model_dir, legacy_format=True)
    onnx_file = os.path.join(folder, "model.onnx")
    export_onnx(model_dir, onnx_file, prefer_legacy=True)
    return model_dir, onnx_file, params


def param_bytes(arch):
    from ppmirnet.modeling import build_model

    return sum(int(np.prod(p.shape)) * 4 for p in build_model(arch).parameters())


def fit(raw):
    """Coefficients per ``family/engine/cpu`` from the raw measurements (see the module docstring)."""
    from ppmirnet.memory import feature_width

    lines = {}
    for r in raw:
        key = (r["arch"]["name"], r["engine"], json.dumps(r["arch"], sort_keys=True))
        lines.setdefault(key, []).append((r["size"] ** 2, r["peak"], r.get("loaded")))
    points = {}
    for (family, engine, arch), pts in lines.items():
        arch = json.loads(arch)
        pixels, peaks, loaded = zip(*pts)
        fixed, per_pixel = fit_line(pixels, peaks)
        # What the engine adds to the process as it was once loaded, besides the
        # per-pixel part: the part of ``fixed`` that does not depend on the machine's
        # libraries (those are in ``loaded``, which a run reads off itself).
        overhead = None
        if None not in loaded:
            overhead = max(float(np.mean([p - per_pixel * n - l for n, p, l in pts])), 0.0)
        print(f"{family} n_feat={arch['n_feat']} {engine}: {fixed / 2**20:.0f} MiB + "
              f"{per_pixel / 1024:.2f} KiB/pixel" +
              ("" if overhead is None else f" (loaded + {overhead / 2**20:.0f} MiB)"))
        points.setdefault((family, engine), []).append(
            (feature_width(arch), param_bytes(arch), fixed, per_pixel, overhead, arch))
    coefficients = {}
    for (family, engine), pts in points.items():
        pts.sort(key=lambda p: -p[0])  # the default (widest) network first
        w0, p0, f0, s0, o0, _ = pts[0]
        if len(pts) > 1:
            w1, p1, f1, s1, o1, _ = pts[1]
            a = (s0 - s1) / (w0 - w1)
            m = max((f0 - f1) / (p0 - p1), 0.0)
            mo = max((o0 - o1) / (p0 - p1), 0.0) if None not in (o0, o1) else 0.0
            scaling = "fitted on two widths"
        else:
            # One width measured: per-pixel cost proportional to the width, the fixed part
            # that of the default network (too high, so safe, for narrower ones).
            a, m, mo = s0 / w0, 0.0, 0.0
            scaling = "proportional to the width (one width measured)"
        row = {"per_pixel_per_width": round(a, 3), "per_pixel": round(s0 - a * w0, 1),
               "fixed": round(f0 - m * p0), "fixed_per_param_byte": round(m, 3)}
        if o0 is not None:
            row.update(overhead=round(max(o0 - mo * p0, 0.0)), overhead_per_param_byte=round(mo, 3))
        row.update(default_width=w0, default_param_bytes=p0, scaling=scaling)
        coefficients[f"{family}/{engine}/cpu"] = row
    return coefficients


def fit_line(xs, ys):
    slope, intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(intercept), float(slope)


SEAM_NETWORKS = [{"name": "MIRNet"}, {"name": "MIRNetV2"},
                 {"name": "MIRNet", "n_feat": 8, "n_RRG": 1, "n_MSRB": 1},
                 {"name": "MIRNetV2", "n_feat": 16, "n_MRB": 1}]


def seams(which=None, size=256, tile=128, overlap=32):
    """Tiled against whole output of each network (random weights, seed 0) on a photo crop.

    Prints max abs difference, PSNR between the two (in [0, 1]) and, for scale,
    the largest change the network makes to its input.
    """
    import paddle
    import skimage.data

    from ppmirnet import processing
    from ppmirnet.engine.dygraph import DygraphRunner
    from ppmirnet.engine.env import set_device
    from ppmirnet.modeling import build_model

    set_device("cpu", 2)
    photo = skimage.data.astronaut()[100:100 + size, 150:150 + size].astype(np.float32) / 255.0
    rows = []
    for arch in [SEAM_NETWORKS[i] for i in which] if which else SEAM_NETWORKS:
        paddle.seed(0)
        runner = DygraphRunner(build_model(arch))
        batch = processing.to_batch([photo])
        whole = np.clip(processing.run_whole(runner, batch), 0, 1)
        tiled = np.clip(processing.run_tiled(runner, batch, tile, overlap), 0, 1)
        diff = np.abs(whole - tiled)
        mse = float(np.mean(diff.astype(np.float64) ** 2))
        psnr = 10 * np.log10(1.0 / mse) if mse else float("inf")
        change = float(np.abs(whole - batch).max())
        rows.append({"arch": arch, "max_abs": float(diff.max()), "psnr_db": round(psnr, 2),
                     "largest_change": change})
        print(f"{json.dumps(arch)}: tiles of {tile} (overlap {overlap}) on {size}x{size}: max abs "
              f"{diff.max():.2e}, PSNR {psnr:.1f} dB between tiled and whole (the network changes "
              f"its input by up to {change:.3f})", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--sizes", default="96,160,224", help="image sides (pixels) to measure")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only, keep the table")
    parser.add_argument("--variants", type=int, default=2,
                        help="networks per family: 1 = the default only, 2 = also the narrow one")
    parser.add_argument("--raw", default=None,
                        help="JSON file of measurements: those already there are not repeated, new "
                             "ones are added, and the fit uses them all")
    parser.add_argument("--work_dir", default=None, help="where exports are kept between runs")
    parser.add_argument("--seams", nargs="?", const="all", default=None, metavar="INDICES",
                        help="measure the tile-seam difference (tiled against whole) instead, of "
                             "all networks of SEAM_NETWORKS or those at INDICES (e.g. 0,2)")
    parser.add_argument("--refit", action="store_true",
                        help="fit again from the measurements stored in the table (no measuring)")
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))

    from ppmirnet.memory import arch_of

    if args.seams:
        seams(None if args.seams == "all" else [int(i) for i in args.seams.split(",")])
        return
    if args.refit:
        from ppmirnet import memory_table

        meta, raw = memory_table.MEASURED_ON, memory_table.MEASUREMENTS
        coefficients = fit(raw)
        print(json.dumps(coefficients, indent=1))
        if not args.no_write:
            write_table(meta, coefficients, raw)
            print(f"wrote {TABLE}")
        return
    engines = args.engines.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    raw = []
    if args.raw and os.path.isfile(args.raw):
        with open(args.raw) as f:
            raw = json.load(f)
    done = {(json.dumps(r["arch"], sort_keys=True), r["engine"], r["size"]) for r in raw}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or tmp
        for family in args.networks.split(","):
            for k, arch in enumerate(NETWORKS[family][:args.variants]):
                arch = arch_of(arch)
                model_dir = onnx_file = None
                if set(engines) - {"dygraph"}:
                    folder = os.path.join(work, f"{family}{k}")
                    if os.path.isfile(os.path.join(folder, "model.onnx")):  # exported by an earlier run
                        model_dir, onnx_file = os.path.join(folder, "paddle"), os.path.join(folder, "model.onnx")
                    else:
                        model_dir, onnx_file, _ = export(arch, folder)
                for engine in engines:
                    for size in sizes:
                        if (json.dumps(arch, sort_keys=True), engine, size) in done:
                            continue
                        r = measure({"engine": engine, "size": size, "threads": args.threads, "arch": arch,
                                     "model_dir": model_dir, "onnx_file": onnx_file})
                        raw.append({"arch": arch, "engine": engine, "size": size, **r})
                        print(f"{family} n_feat={arch['n_feat']} {engine:17s} {size}x{size}: peak "
                              f"{r['peak'] / 2**20:7.0f} MiB (after loading {r['loaded'] / 2**20:.0f})",
                              flush=True)
                        if args.raw:
                            from ppmirnet.utils.io import atomic_path

                            with atomic_path(args.raw) as path:
                                with open(path, "w") as f:
                                    json.dump(raw, f)
    coefficients = fit(raw)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import paddle

    versions = {"paddlepaddle": paddle.__version__}
    for module in ("onnxruntime", "openvino"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    meta = {"machine": f"{cpu}, {os.cpu_count()} cores, {args.threads} threads",
            "date": datetime.date.today().isoformat(), "sizes": sizes, "versions": versions}
    print(json.dumps(coefficients, indent=1))
    if not args.no_write:
        write_table(meta, coefficients, raw)
        print(f"wrote {TABLE}")


def write_table(meta, coefficients, raw):
    from ppmirnet.utils.io import atomic_path

    text = ['"""Peak-memory coefficients of :mod:`ppmirnet.memory`, written by benchmarks/memory_model.py.',
            "", "Do not edit by hand: rerun the script. Bytes; see the script for the model.", '"""', "",
            f"MEASURED_ON = {json.dumps(meta)}", "", "COEFFICIENTS = {"]
    text += [f"    {json.dumps(k)}: {json.dumps(v)}," for k, v in sorted(coefficients.items())]
    text += ["}", "", "# (arch, engine, size, loaded, peak) as measured", "MEASUREMENTS = ["]
    text += [f"    {json.dumps(r)}," for r in raw]
    text += ["]", ""]
    text = "\n".join(text).replace("true", "True").replace("false", "False").replace("null", "None")
    with atomic_path(TABLE) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())

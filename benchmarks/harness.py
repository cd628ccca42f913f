"""CPU benchmark of MIRNet's runtimes against the machine's matrix-product rate.

For each runtime (``dygraph``, Paddle Inference with and without oneDNN,
onnxruntime), thread count and input it measures seconds per image, seconds
per megapixel and peak RSS, each job in a fresh child process (so RSS and
thread settings do not leak between jobs). In the same run it measures
numpy's float32 matrix-product rate at each thread count and reports each
job's efficiency = (model FLOPs / time) / that rate. Model FLOPs are counted
exactly from the network (every convolution, transposed and fixed depthwise
ones included; 1 MAC = 2 FLOPs).

``benchmarks/run_benchmark.py`` is the command-line front end; this module
is imported from there (as ``harness``) and by the tests, never by the package.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from ppmirnet.inference.report import peak_rss_mb

PATHS = ("dygraph", "paddle_onednn", "paddle_onednn_legacy", "paddle_native", "onnxruntime", "openvino",
         "openvino_onnx", "predict")
PATH_LABELS = {
    "dygraph": "Paddle dygraph",
    "paddle_onednn": "Paddle Inference + oneDNN (.json)",
    "paddle_onednn_legacy": "Paddle Inference + oneDNN (.pdmodel, memory optim)",
    "paddle_native": "Paddle Inference, no oneDNN",
    "onnxruntime": "onnxruntime",
    "openvino": "OpenVINO (.pdmodel for OpenVINO)",
    "openvino_onnx": "OpenVINO (ONNX)",
    "predict": "`ppmirnet predict --weights W` defaults (Restorer(W))",
}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ----------------------------------------------------------------- FLOPs


def _layer_macs(layer, inputs, output):
    """MACs of one call of a convolution-like layer (hook helper)."""
    import paddle.nn as nn

    from ppmirnet.modeling.resample import BlurPool

    x = inputs[0]
    if isinstance(layer, nn.Conv2DTranspose):
        w = layer.weight.shape  # [Cin, Cout/groups, kh, kw]
        return int(np.prod(x.shape)) * w[1] * w[2] * w[3]
    if isinstance(layer, nn.Conv2D):
        w = layer.weight.shape  # [Cout, Cin/groups, kh, kw]
        return int(np.prod(output.shape)) * w[1] * w[2] * w[3]
    if isinstance(layer, BlurPool):  # depthwise 3x3, stride 2
        return int(np.prod(output.shape)) * 9
    if isinstance(layer, nn.Upsample):  # exported as a depthwise 4x4 transposed conv on the input padded by 1
        n, c, h, w = x.shape
        return n * c * (h + 2) * (w + 2) * 16
    return 0


def _layer_kind(layer):
    """A short name for the kind of convolution ``layer`` is (for the MAC breakdown)."""
    import paddle.nn as nn

    if isinstance(layer, nn.Conv2DTranspose):
        return "transposed conv 3x3"
    if isinstance(layer, nn.Conv2D):
        k = layer.weight.shape[2]
        return f"conv {k}x{k}"
    return "fixed depthwise (blur, bilinear)"


def _count_macs_at(model, height, width, by_kind=None):
    """MACs of one forward at ``height`` x ``width``; ``by_kind`` (a dict) gets a breakdown."""
    import paddle
    import paddle.nn as nn

    from ppmirnet.modeling.resample import BlurPool

    total = [0]
    hooks = []
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose, BlurPool, nn.Upsample)):
            def hook(lay, inputs, output):
                macs = _layer_macs(lay, inputs, output)
                total[0] += macs
                if by_kind is not None:
                    kind = _layer_kind(lay)
                    by_kind[kind] = by_kind.get(kind, 0) + macs
            hooks.append(layer.register_forward_post_hook(hook))
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, 3, height, width], dtype="float32"))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


class MacCounter:
    """Exact convolution MACs of a MIRNet for any input size, without running it there.

    Every layer's input and output sizes are affine in H and in W, so the
    MACs of one image are ``a*H*W + b*H + c*W + d`` (H, W padded to the
    model's multiple). The four coefficients come from four small forward
    passes with hooks on every convolution.
    """

    def __init__(self, model):
        m = model.pad_multiple
        s0, s1 = 2 * m, 4 * m
        probes = [(s0, s0), (s0, s1), (s1, s0), (s1, s1)]
        rows = [[h * w, h, w, 1] for h, w in probes]
        values = [_count_macs_at(model, h, w) for h, w in probes]
        self.coef = np.linalg.solve(np.array(rows, dtype=np.float64), np.array(values, dtype=np.float64))
        self.multiple = m

    def __call__(self, height, width, batch=1):
        h = -(-height // self.multiple) * self.multiple
        w = -(-width // self.multiple) * self.multiple
        return int(round(batch * float(self.coef @ np.array([h * w, h, w, 1.0]))))


class CountingRunner:
    """Wraps a runner and adds up the MACs of every batch it is given (tiles included)."""

    def __init__(self, runner, counter):
        self.runner, self.counter, self.macs = runner, counter, 0

    def __call__(self, batch):
        self.macs += self.counter(batch.shape[2], batch.shape[3], batch.shape[0])
        return self.runner(batch)


# ------------------------------------------------------------- machine


def machine_name():
    """CPU model, core count and memory, e.g. ``AMD EPYC, 2 cores, 23 GiB``."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB"


def _sgemm_child(n, seconds):
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def sgemm_gflops(threads, n=2048, seconds=3.0):
    """numpy float32 matrix-product rate (GFLOP/s, best of ``seconds``) on ``threads`` threads."""
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    code = (f"from harness import _sgemm_child; "
            f"print(_sgemm_child({n}, {seconds}))")
    out = _run_child([sys.executable, "-c", code], env)
    return float(out.strip().splitlines()[-1])


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


# ---------------------------------------------------------------- jobs


HERE = os.path.dirname(os.path.abspath(__file__))


def _repo_root():
    return os.path.dirname(HERE)


def _run_child(cmd, env):
    env = dict(env)
    # The children import this module (as ``harness``) and the package.
    paths = [HERE, _repo_root(), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("GLOG_minloglevel", "2")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({' '.join(cmd[:3])} ...):\n{proc.stderr[-3000:]}")
    return proc.stdout


def load_arch(model_dir):
    """The ``Arch`` section of a benchmark model folder (older folders held MIRNet without a name)."""
    with open(os.path.join(model_dir, "arch.json")) as f:
        return {"name": "MIRNet", **json.load(f)}


def _make_runner(path, threads, model_dir):
    if path == "dygraph":
        import paddle

        from ppmirnet.modeling import build_model
        from ppmirnet.safe_pickle import load_paddle

        paddle.set_device("cpu")
        model = build_model(load_arch(model_dir))
        model.set_state_dict(load_paddle(os.path.join(model_dir, "model.pdparams")))
        model.eval()

        def run(batch):
            with paddle.no_grad():
                return model(paddle.to_tensor(batch)).numpy()
        return run
    if path in ("paddle_onednn", "paddle_onednn_legacy", "paddle_native"):
        from ppmirnet.inference.paddle_predictor import PaddlePredictor, PredictorOptions

        opts = PredictorOptions(enable_mkldnn=path != "paddle_native", cpu_threads=threads,
                                prefer_legacy=path == "paddle_onednn_legacy")
        return PaddlePredictor(model_dir, opts, quiet=True)
    if path == "onnxruntime":
        from ppmirnet.inference.onnx_runtime import OnnxPredictor

        return OnnxPredictor(os.path.join(model_dir, "model.onnx"), threads)
    if path in ("openvino", "openvino_onnx"):
        from ppmirnet.inference.openvino_runtime import OpenVinoPredictor

        model = os.path.join(model_dir, "openvino" if path == "openvino" else "model.onnx")
        return OpenVinoPredictor(model, threads)
    if path == "predict":
        # What `ppmirnet predict --weights W` builds with its default flags; the
        # export cache of the work folder was filled when the model was prepared.
        from ppmirnet import Restorer

        os.environ["PPMIRNET_HOME"] = os.path.join(model_dir, "home")
        restorer = Restorer(os.path.join(model_dir, "weights.pdparams"))
        print(f"predict engine: {restorer.engine}", file=sys.stderr)
        return restorer.runner
    raise ValueError(f"unknown path {path!r}; valid: {', '.join(PATHS)}")


class _TimeFirstTiles:
    """Runs the first ``limit`` calls (tiles) for real and returns later ones unchanged.

    For very large tiled images: memory is allocated exactly as in a full
    run (the whole image and the blending buffers), the time of the skipped
    tiles is extrapolated from the timed ones.
    """

    def __init__(self, runner, limit):
        self.runner, self.limit, self.times, self.calls = runner, limit, [], 0

    def __call__(self, batch):
        self.calls += 1
        if self.calls > self.limit:
            return batch.copy()
        start = time.perf_counter()
        out = self.runner(batch)
        self.times.append(time.perf_counter() - start)
        return out


def _job_child(spec):
    """Run one job (in a child process) and return its measurements."""
    from ppmirnet import processing

    with open(os.path.join(spec["model_dir"], "macs.json")) as f:
        coef = json.load(f)
    counter = _StoredCounter(coef["coef"], coef["multiple"])
    runner = _make_runner(spec["path"], spec["threads"], spec["model_dir"])
    results = []
    rng = np.random.default_rng(0)
    for case in spec["cases"]:
        h, w, tile = case["height"], case["width"], case.get("tile", 0)
        image = rng.random((h, w, 3), dtype=np.float32)
        if tile and (h > tile or w > tile):
            # The tiles' own shape: engines that prepare per input shape
            # (oneDNN, OpenVINO's compilation) do it here, untimed.
            warm = image[:processing.tile_layout(h, tile, case.get("overlap", 32))[1],
                         :processing.tile_layout(w, tile, case.get("overlap", 32))[1]]
        else:
            warm = image
        for _ in range(spec["warmup"]):
            processing.restore(runner, warm)
        times, extra = [], {}
        for _ in range(spec["repeats"]):
            sampler = _TimeFirstTiles(runner, case.get("timed_tiles") or float("inf"))
            counting = CountingRunner(sampler, counter)
            start = time.perf_counter()
            processing.restore(counting, image, tile=tile or None, overlap=case.get("overlap", 32))
            elapsed = time.perf_counter() - start
            skipped = sampler.calls - len(sampler.times)
            if skipped:
                elapsed += skipped * float(np.mean(sampler.times))
                extra = dict(estimated=True, timed_tiles=len(sampler.times), total_tiles=sampler.calls,
                             tile_seconds=sampler.times)
            elif tile:
                extra = dict(total_tiles=sampler.calls)
            times.append(elapsed)
        # The machine is shared: the matrix-product rate is measured again
        # right after each case, in the same process and thread setting, so
        # the efficiency compares like with like.
        job_sgemm = _sgemm_child(512 if spec.get("quick") else 2048, 0.3 if spec.get("quick") else 2.0)
        results.append(dict(case, seconds=min(times), all_seconds=times, macs=counting.macs,
                            peak_rss_mb=peak_rss_mb(), job_sgemm_gflops=job_sgemm, **extra))
    return results


class _StoredCounter(MacCounter):
    def __init__(self, coef, multiple):  # noqa: super().__init__ would run the model
        self.coef, self.multiple = np.array(coef), multiple


def prepare_extras(work_dir, log=print):
    """Add what the OpenVINO and predict rows read to a prepared ``work_dir`` (once).

    ``weights.pdparams`` (the weights with their network recorded, as
    ``ppmirnet predict`` reads them), ``openvino/`` (the program exported for
    OpenVINO) and ``home/`` (the export cache of the predict row, filled by
    one ``Restorer`` built here so the row times restoring, not exporting).
    """
    import paddle

    from ppmirnet import Restorer
    from ppmirnet.engine.checkpoint import save_weights
    from ppmirnet.export import export_inference_model
    from ppmirnet.modeling import build_model

    weights = os.path.join(work_dir, "weights.pdparams")
    if not os.path.isfile(weights):
        save_weights(weights, paddle.load(os.path.join(work_dir, "model.pdparams")), load_arch(work_dir))
    if not os.path.isfile(os.path.join(work_dir, "openvino", "inference.pdmodel")):
        model = build_model(load_arch(work_dir))
        model.set_state_dict(paddle.load(os.path.join(work_dir, "model.pdparams")))
        export_inference_model(model, os.path.join(work_dir, "openvino"), legacy_format=True, forms="openvino")
    previous = os.environ.get("PPMIRNET_HOME")
    os.environ["PPMIRNET_HOME"] = os.path.join(work_dir, "home")
    try:
        log(f"predict row: {Restorer(weights, log=log)!r}")
    finally:
        if previous is None:
            del os.environ["PPMIRNET_HOME"]
        else:
            os.environ["PPMIRNET_HOME"] = previous


def prepare_model(arch, work_dir, seed=0, with_onnx=True):
    """Build a randomly initialised network, export it (Paddle + ONNX) and count its MACs.

    ``arch`` is an ``Arch`` section (``name``: MIRNet or MIRNetV2, and its
    arguments). Writes into ``work_dir``: ``arch.json``, ``model.pdparams``,
    ``inference.json``/``.pdmodel``/``.pdiparams``, ``model.onnx``, ``macs.json``.
    Speed does not depend on the weights, so no checkpoint is needed.
    """
    import paddle

    from ppmirnet.export import export_inference_model
    from ppmirnet.modeling import arch_section, build_model

    paddle.seed(seed)
    model = build_model(arch)
    model.eval()
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, "arch.json"), "w") as f:
        json.dump(arch_section(model), f)
    paddle.save(model.state_dict(), os.path.join(work_dir, "model.pdparams"))
    # Count first: after export the layer runs its static program and the
    # per-layer hooks no longer fire.
    counter = MacCounter(model)
    export_inference_model(model, work_dir, legacy_format=True)
    with open(os.path.join(work_dir, "macs.json"), "w") as f:
        json.dump({"coef": counter.coef.tolist(), "multiple": counter.multiple}, f)
    if with_onnx:
        from ppmirnet.inference.onnx_runtime import export_onnx

        export_onnx(work_dir, os.path.join(work_dir, "model.onnx"))
    return counter


def run_job(path, threads, cases, model_dir, warmup=1, repeats=2, quick=False):
    """Measure ``cases`` (dicts with height, width, optional tile/overlap/name) in a child."""
    spec = dict(path=path, threads=threads, cases=cases, model_dir=model_dir, warmup=warmup, repeats=repeats,
                quick=quick)
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    load_before = os.getloadavg()
    code = ("import json, sys; from harness import _job_child; "
            "print('RESULT ' + json.dumps(_job_child(json.loads(sys.argv[1]))))")
    out = _run_child([sys.executable, "-c", code, json.dumps(spec)], env)
    line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
    results = json.loads(line[len("RESULT "):])
    load_after = os.getloadavg()
    for r in results:
        r.update(path=path, threads=threads, load_before=load_before[0], load_after=load_after[0])
    return results


# Runs the measured command from a fresh, small interpreter and reports its
# wait4 usage. ru_maxrss is kept across fork and exec (the kernel takes the
# old address space's high-water mark at exec), so a command started straight
# from this process, which holds Paddle, would report at least this process's
# size. Started from the launcher, its floor is the launcher's few MB.
_LAUNCHER = """
import json, os, sys
try:
    pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
except OSError as e:
    report = {"errno": e.errno, "error": e.strerror or str(e)}
else:
    _, status, usage = os.wait4(pid, 0)
    report = {"code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}
with open(sys.argv[1], "w") as f:
    json.dump(report, f)
"""


def run_measured(args, env):
    """Run ``args`` to its end: ``(exit code, stdout, stderr, peak RSS in MB of that command alone)``.

    Raises ``OSError`` when the command cannot be started.
    """
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "usage.json")
        with open(os.path.join(tmp, "out"), "w+") as out, open(os.path.join(tmp, "err"), "w+") as err:
            subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, report_path, *args],
                           stdout=out, stderr=err, env=env, check=True)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        with open(report_path) as f:
            report = json.load(f)
    if "error" in report:
        raise OSError(report["errno"], report["error"], args[0])
    return report["code"], stdout, stderr, report["maxrss_kb"] / 1024


def printed(stdout, key):
    """The numbers of the ``<key>: <number>`` lines of a child's output, in order."""
    return [float(line.partition(":")[2]) for line in stdout.splitlines()
            if line.partition(":")[0].strip() == key]


def run_reference(name, argv, threads, cases, arch, warmup=1, repeats=2):
    """Time a reference implementation (e.g. the official PyTorch model) on untiled ``cases``.

    A reference is a command that accepts ``--arch JSON --height H --width W
    --threads T --warmup N --repeats N``, builds that network (random weights:
    the time does not depend on them), runs ``warmup`` untimed and
    ``repeats`` timed forwards of one random image and prints one
    ``forward_seconds: <s>`` line per timed forward. It runs in a child
    process, so its peak RSS is its own; the best forward is reported.
    """
    env = dict(os.environ, GLOG_minloglevel="2", **{v: str(threads) for v in THREAD_VARS})
    rows = []
    for case in cases:
        args = list(argv) + ["--arch", json.dumps(arch), "--height", str(case["height"]),
                             "--width", str(case["width"]), "--threads", str(threads),
                             "--warmup", str(warmup), "--repeats", str(repeats)]
        load_before = os.getloadavg()
        try:
            code, stdout, stderr, peak = run_measured(args, env)
        except OSError as e:
            raise ValueError(f"reference {name!r} cannot start {args[0]!r}: {e.strerror}") from None
        if code != 0:
            raise RuntimeError(f"reference {name!r} failed ({code}) on {case['name']}:\n{stderr[-3000:]}")
        times = printed(stdout, "forward_seconds")
        if len(times) != repeats:
            raise RuntimeError(f"reference {name!r} printed {len(times)} forward_seconds lines, "
                               f"expected {repeats}")
        rows.append(dict(case, path=name, threads=threads, seconds=min(times), all_seconds=times,
                         peak_rss_mb=peak, job_sgemm_gflops=None,
                         load_before=load_before[0], load_after=os.getloadavg()[0]))
    return rows


def add_rates(result, sgemm):
    """Add seconds per megapixel, GFLOP/s and efficiency.

    ``efficiency`` divides by the matrix-product rate measured in the job's
    own process right after it (``job_sgemm_gflops``);
    ``efficiency_run`` by the rate measured once at the start of the run
    (``sgemm[threads]``). On a quiet machine both agree.
    """
    mp = result["height"] * result["width"] / 1e6
    gflops = 2.0 * result["macs"] / result["seconds"] / 1e9
    rate = sgemm.get(str(result["threads"])) or sgemm.get(result["threads"])
    job_rate = result.get("job_sgemm_gflops")
    return dict(result, megapixels=mp, s_per_mp=result["seconds"] / mp, gflops=gflops,
                efficiency=gflops / job_rate if job_rate else None,
                efficiency_run=gflops / rate if rate else None)


QUICK_ARCHS = {"MIRNet": dict(n_feat=8, n_RRG=1, n_MSRB=1), "MIRNetV2": dict(n_feat=16, n_MRB=1)}


def default_plan(quick, network="MIRNet"):
    """The jobs of a full run (default model) or a quick one (tiny model, seconds).

    ``network`` is MIRNet or MIRNetV2: the same jobs, the same measures.
    """
    if network not in QUICK_ARCHS:
        raise ValueError(f"unknown network {network!r}; valid: {', '.join(QUICK_ARCHS)}")
    if quick:
        arch = dict(QUICK_ARCHS[network], name=network)
        cases = [dict(key="64", name="64x64", height=64, width=64),
                 dict(key="tiled", name="tiled 100x75", height=75, width=100, tile=48, overlap=8,
                      timed_tiles=3)]
        jobs = [(p, 1, cases) for p in PATHS]
        return arch, jobs, dict(warmup=1, repeats=1)
    arch = {"name": network}
    c256 = dict(key="256", name="256x256", height=256, width=256)
    c512 = dict(key="512", name="512x512", height=512, width=512)
    # 12 MP = 63 tiles of 512: the first tiles are timed and the rest
    # extrapolated unless --full_12mp (a full run takes over half an hour per
    # configuration on 2 cores). onnxruntime: the runtime whose memory at
    # 512x512 leaves room under 3 GB (Paddle + oneDNN needs over 6 GB there).
    c12 = dict(key="12mp", name="12 MP tiled 512", height=3000, width=4000, tile=512, overlap=32,
               timed_tiles=2)
    # 528 = 496 * 8 + 32: the tiles cover 4000 pixels with no extra overlap.
    c12b = dict(key="12mp528", name="12 MP tiled 528", height=3000, width=4000, tile=528, overlap=32,
                timed_tiles=2)
    # Paddle Inference's memory grows with the tile (over 6 GB at 512x512, 2.3 GB at
    # 256x256 with the .pdmodel): tiles of 256 keep a 12 MP photo under 3 GB with it.
    c12s = dict(key="12mp256", name="12 MP tiled 256", height=3000, width=4000, tile=256, overlap=32,
                timed_tiles=2)
    # Most informative first: a run cut short still answers the main questions.
    jobs = [("openvino", 2, [c256]), ("predict", 2, [c256]), ("openvino_onnx", 2, [c256]),
            ("openvino", 2, [c512]), ("predict", 2, [c512]), ("openvino", 2, [c12]), ("predict", 2, [c12]),
            ("paddle_onednn", 2, [c256]), ("onnxruntime", 2, [c256]),
            ("paddle_onednn_legacy", 2, [c256]),
            ("onnxruntime", 2, [c12]),
            ("paddle_onednn", 1, [c256]), ("paddle_onednn_legacy", 1, [c256]), ("onnxruntime", 1, [c256]),
            ("paddle_native", 2, [c256]), ("dygraph", 2, [c256]),
            ("paddle_onednn", 2, [c512]), ("paddle_onednn_legacy", 2, [c512]), ("onnxruntime", 2, [c512]),
            ("paddle_native", 1, [c256]), ("dygraph", 1, [c256]),
            ("paddle_onednn", 1, [c512]), ("onnxruntime", 1, [c512]),
            ("onnxruntime", 2, [c12b]), ("paddle_onednn_legacy", 2, [c12s])]
    return arch, jobs, dict(warmup=1, repeats=1)


def format_table(rows):
    """Markdown table of derived results; "vs best": against the best row of the same input and threads."""
    lines = ["| input | runtime | threads | s/image | vs best | s/MP | GFLOP/s | sgemm GFLOP/s | efficiency "
             "| peak RSS (MB) | vs best | load avg |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        peers = [q for q in rows if q["name"] == r["name"] and q["threads"] == r["threads"]]
        fastest = min(q["seconds"] for q in peers)
        leanest = min(q["peak_rss_mb"] for q in peers)
        eff = "n/a" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        rate = r.get("job_sgemm_gflops")
        rate = "n/a" if rate is None else f"{rate:.0f}"
        name = r["name"] + (f" (est. from {r['timed_tiles']}/{r['total_tiles']} tiles)" if r.get("estimated") else "")
        lines.append(
            f"| {name} | {PATH_LABELS.get(r['path'], r['path'])} | {r['threads']} | {r['seconds']:.2f} | "
            f"{r['seconds'] / fastest:.2f}x | {r['s_per_mp']:.1f} | {r['gflops']:.1f} | {rate} | {eff} | "
            f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / leanest:.2f}x | "
            f"{r['load_before']:.2f}->{r['load_after']:.2f} |")
    return "\n".join(lines)


def select_jobs(plan, paths=None, threads=None, cases=None):
    """Keep the planned jobs whose runtime, thread count and case key are listed (None = all)."""
    jobs = []
    for path, t, job_cases in plan:
        if (paths and path not in paths) or (threads and t not in threads):
            continue
        kept = [c for c in job_cases if not cases or c["key"] in cases]
        if kept:
            jobs.append((path, t, kept))
    return jobs


def run_benchmark(quick=False, work_dir=None, paths=None, threads=None, cases=None,
                  repeats=None, full_tiles=False, log=print, network="MIRNet", references=()):
    """Run the benchmark; returns a dict with machine, sgemm rates, MACs and result rows.

    Args:
        quick (bool): tiny model and images (seconds), for the test suite.
        work_dir (str): keeps the exported model between runs (a temporary
            folder by default).
        paths, threads, cases: restrict the plan (see :func:`default_plan`).
        repeats (int): timed runs per case (the best is reported).
        full_tiles (bool): time every tile of the 12 MP cases instead of
            extrapolating from the first ones.
        network (str): MIRNet or MIRNetV2 (its default configuration, or a
            tiny one with ``quick``).
        references: ``(name, argv)`` pairs of reference commands (see
            :func:`run_reference`), timed before the runtimes on every untiled
            input and thread count of the plan.
        log: called with each progress line.
    """
    arch, plan, reps = default_plan(quick, network)
    jobs = select_jobs(plan, paths, threads, cases)
    if not jobs:
        raise ValueError("no benchmark job left after filtering")
    if repeats:
        reps = dict(reps, repeats=repeats)
    if full_tiles:
        jobs = [(p, t, [dict(c, timed_tiles=None) for c in cs]) for p, t, cs in jobs]
    own_tmp = None
    if work_dir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="mirnet-bench-")
        work_dir = own_tmp.name
    try:
        log(f"machine: {machine_name()}; load average {os.getloadavg()[0]:.2f}")
        needs_onnx = any(p in ("onnxruntime", "openvino_onnx") for p, _, _ in jobs)
        if not os.path.isfile(os.path.join(work_dir, "macs.json")):
            prepare_model(arch, work_dir, with_onnx=needs_onnx)
        if any(p in ("openvino", "predict") for p, _, _ in jobs):
            prepare_extras(work_dir, log)
        kept = load_arch(work_dir)["name"]
        if kept != network:
            raise ValueError(f"--work_dir {work_dir} holds the {kept} benchmark model, not "
                             f"{network}: give another --work_dir")
        with open(os.path.join(work_dir, "macs.json")) as f:
            stored = json.load(f)
        counter = _StoredCounter(stored["coef"], stored["multiple"])
        full_arch = load_arch(work_dir)
        macs_256 = counter(256, 256)
        log(f"model {full_arch}: {macs_256 / 1e9:.2f} GMACs at 256x256")
        thread_counts = sorted({t for _, t, _ in jobs})
        sgemm = {str(t): sgemm_gflops(t, n=512 if quick else 2048, seconds=0.3 if quick else 3.0)
                 for t in thread_counts}
        for t in thread_counts:
            log(f"numpy float32 matmul, {t} thread(s): {sgemm[str(t)]:.1f} GFLOP/s")
        rows = []

        def record(path, t, results):
            for r in results:
                r = add_rates(r, sgemm)
                rows.append(r)
                eff = "n/a" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
                rate = "n/a" if r.get("job_sgemm_gflops") is None else f"{r['job_sgemm_gflops']:.1f} GFLOP/s"
                est = f" (estimated: {r['timed_tiles']} of {r['total_tiles']} tiles timed)" if r.get("estimated") else ""
                log(f"{r['name']:>12} {path:<14} threads={t} {r['seconds']:.3f} s/image{est} "
                    f"{r['s_per_mp']:.2f} s/MP {r['gflops']:.1f} GFLOP/s "
                    f"sgemm={rate} efficiency={eff} "
                    f"peak_rss={r['peak_rss_mb']:.0f} MB load={r['load_before']:.2f}->{r['load_after']:.2f}")

        # References first, so that a command breaking the protocol fails in
        # seconds rather than after the whole plan; they run whole images
        # only (tiling is this package's, not theirs).
        untiled = {}  # thread count -> its untiled cases, each once
        for _, t, cases in jobs:
            for c in cases:
                if not c.get("tile"):
                    untiled.setdefault(t, {}).setdefault(c["key"], c)
        for name, argv in references:
            for t, cases in untiled.items():
                found = run_reference(name, argv, t, list(cases.values()), full_arch, **reps)
                for r in found:
                    r["macs"] = counter(r["height"], r["width"])
                record(name, t, found)
        for path, t, cases in jobs:
            record(path, t, run_job(path, t, cases, work_dir, quick=quick, **reps))
        return dict(machine=machine_name(), arch=full_arch, gmacs_256=macs_256 / 1e9, sgemm_gflops=sgemm,
                    rows=rows, table=format_table(rows), quick=quick,
                    paddle_version=_version("paddle"), onnxruntime_version=_version("onnxruntime"),
                    openvino_version=_version("openvino"))
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()


# ------------------------------------------------------------- profile


def profile_onnxruntime(onnx_file, size=256, threads=2):
    """Time per ONNX operator type in one warm ``size`` x ``size`` forward (onnxruntime's profiler).

    Returns ``[(op type, milliseconds, share of the total)]``, largest first.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="mirnet-profile-") as tmp:
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(onnx_file, opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
        for _ in range(2):  # the first run also prepares kernels: profile the second
            session.run(None, {session.get_inputs()[0].name: x})
        events = _read_trace(session.end_profiling())
    last = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"][-1]
    t0, t1 = last["ts"], last["ts"] + last["dur"]
    per_op = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and t0 <= e["ts"] <= t1:
            op = e.get("args", {}).get("op_name", "?")
            per_op[op] = per_op.get(op, 0) + e["dur"]
    total = sum(per_op.values()) or 1
    return sorted(((op, us / 1000.0, us / total) for op, us in per_op.items()), key=lambda r: -r[1])


_PADDLE_PROFILE_CODE = """
import sys, numpy as np
from paddle import inference
from ppmirnet.export import find_program
program, params = find_program(sys.argv[1], prefer_legacy=sys.argv[4] == "1")
c = inference.Config(program, params)
c.disable_gpu(); c.set_cpu_math_library_num_threads(int(sys.argv[3])); c.enable_mkldnn()
c.disable_glog_info(); c.enable_profile()
if program.endswith(".pdmodel"):
    c.enable_memory_optim()
p = inference.create_predictor(c)
n = int(sys.argv[2])
h = p.get_input_handle(p.get_input_names()[0]); h.reshape([1, 3, n, n])
h.copy_from_cpu(np.random.default_rng(0).random((1, 3, n, n), dtype=np.float32))
p.run(); p.run()
del p
"""


def profile_paddle(model_dir, size=256, threads=2, legacy=False):
    """Time per operator of Paddle Inference + oneDNN (Paddle's own profiler, two runs).

    Returns ``[(op, milliseconds per run, share)]``, largest first. The two
    runs include the first one, which also prepares the oneDNN kernels.
    """
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    out = _run_child([sys.executable, "-c", _PADDLE_PROFILE_CODE, model_dir, str(size), str(threads),
                      "1" if legacy else "0"], env)
    per_op, in_events = {}, False
    for line in out.splitlines():
        if "Event Summary" in line:
            in_events = True
            continue
        if not in_events or not line or line[0].isspace() or line.startswith(("Event", "-")):
            continue
        parts = line.split()
        if len(parts) >= 7 and "::" not in parts[0]:  # "threadN::op" repeats the merged rows
            try:
                per_op[parts[0]] = per_op.get(parts[0], 0.0) + float(parts[2]) / 2
            except ValueError:
                continue
    total = sum(per_op.values()) or 1.0
    return sorted(((op, ms, ms / total) for op, ms in per_op.items()), key=lambda r: -r[1])


def _read_trace(path):
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    return events


def macs_by_kind(arch, height=256, width=256):
    """Convolution MACs of a network (an ``Arch`` section) at one size, per kind of convolution."""
    from ppmirnet.modeling import build_model

    by_kind = {}
    _count_macs_at(build_model(dict({"name": "MIRNet"}, **arch)), height, width, by_kind)
    return dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))

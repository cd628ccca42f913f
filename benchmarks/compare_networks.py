"""MIRNet against MIRNet-v2 on this machine: parameters, MACs, time per image, side by side.

    python benchmarks/compare_networks.py                 # default models, 256x256, 2 threads
    python benchmarks/compare_networks.py --size 128 --repeats 5

Both default networks (random weights) are exported and run by Paddle
Inference with oneDNN (the CPU deployment path) and in dygraph, alternating
between the two networks so that a busy machine slows both alike; the best
of ``--repeats`` runs is kept. Prints one line per measurement and the ratio.
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from ppmirnet.cli import run_tool  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="square input size")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per network and runtime")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
    import numpy as np
    import paddle

    from ppmirnet.export import export_inference_model
    from ppmirnet.inference import PaddlePredictor, PredictorOptions
    from harness import _count_macs_at
    from ppmirnet.modeling import MIRNet, MIRNetV2

    paddle.set_device("cpu")
    paddle.set_num_threads(args.threads) if hasattr(paddle, "set_num_threads") else None
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    nets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cls in (("MIRNet", MIRNet), ("MIRNetV2", MIRNetV2)):
            paddle.seed(0)
            model = cls()
            model.eval()
            params = sum(int(np.prod(q.shape)) for q in model.parameters())
            macs = _count_macs_at(model, args.size, args.size)
            out = os.path.join(tmp, name)
            export_inference_model(model, out)
            runner = PaddlePredictor(out, PredictorOptions(enable_mkldnn=True, cpu_threads=args.threads),
                                     quiet=True)
            runner(x)  # warm-up: oneDNN primitives
            nets[name] = dict(model=model, runner=runner, params=params, macs=macs,
                              times={"paddle_onednn": [], "dygraph": []})
            print(f"{name}: {params:,} parameters, {macs / 1e9:.2f} GMACs at {args.size}x{args.size}",
                  flush=True)
        for _ in range(args.repeats):
            for name, net in nets.items():
                tic = time.perf_counter()
                net["runner"](x)
                net["times"]["paddle_onednn"].append(time.perf_counter() - tic)
                with paddle.no_grad():
                    tic = time.perf_counter()
                    net["model"](paddle.to_tensor(x)).numpy()
                    net["times"]["dygraph"].append(time.perf_counter() - tic)
    for runtime in ("paddle_onednn", "dygraph"):
        best = {n: min(net["times"][runtime]) for n, net in nets.items()}
        for name, t in best.items():
            print(f"{runtime}: {name} {t * 1000:.0f} ms per {args.size}x{args.size} image "
                  f"(best of {args.repeats}, {args.threads} threads)")
        print(f"{runtime}: MIRNet / MIRNet-v2 time ratio {best['MIRNet'] / best['MIRNetV2']:.2f}")


if __name__ == "__main__":
    sys.exit(run_tool(main))

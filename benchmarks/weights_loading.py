"""Time of reading weights through the restricted unpickler, against plain loading.

    python benchmarks/weights_loading.py [--work_dir /tmp/ppmirnet-weights-bench] [--repeats 3]

Writes the default MIRNet's weights (31.8 M parameters, random values) with
paddle.save and prints the median time of ``paddle.load`` and of
``ppmirnet.safe_pickle.load_paddle`` (check + the same paddle.load from
memory). With ``--pth FILE`` it also times :func:`ppmirnet.safe_pickle.load_torch`
on a PyTorch checkpoint (and ``torch.load(weights_only=True)`` when torch is
installed). Timings depend on the machine's load: compare the ratio.
"""

import argparse
import os
import statistics
import time
import zlib  # noqa: F401  (before paddle: see ppmirnet/__init__.py)


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default="/tmp/ppmirnet-weights-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pth", default=None, help="a PyTorch checkpoint to time as well")
    args = parser.parse_args()

    import paddle

    from ppmirnet.engine.checkpoint import save_weights
    from ppmirnet.modeling import MIRNet
    from ppmirnet.safe_pickle import load_paddle, load_torch

    os.makedirs(args.work_dir, exist_ok=True)
    path = os.path.join(args.work_dir, "mirnet_default.pdparams")
    if not os.path.isfile(path):
        model = MIRNet()
        save_weights(path, model.state_dict(), {"name": "MIRNet", **model.arch})
    size = os.path.getsize(path) / 2**20
    plain = _median_time(lambda: paddle.load(path), args.repeats)
    safe = _median_time(lambda: load_paddle(path), args.repeats)
    print(f"{path} ({size:.0f} MiB): paddle.load {plain:.3f} s, load_paddle {safe:.3f} s "
          f"(x{safe / plain:.2f})")
    if args.pth:
        size = os.path.getsize(args.pth) / 2**20
        ours = _median_time(lambda: load_torch(args.pth), args.repeats)
        line = f"{args.pth} ({size:.0f} MiB): load_torch {ours:.3f} s"
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            theirs = _median_time(lambda: torch.load(args.pth, weights_only=True), args.repeats)
            line += f", torch.load {theirs:.3f} s (x{ours / theirs:.2f})"
        print(line)


if __name__ == "__main__":
    main()

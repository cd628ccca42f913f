"""Time training iterations of ppmirnet's MIRNet, as ``tools/train.py`` runs them.

    python benchmarks/train_step.py --n_feat 32 --n_RRG 1 --n_MSRB 1 --batch 4 --patch 64 \
        --iters 5 --threads 2 [--device gpu]

The model, loss and optimizer come from configs/mirnet_sidd.yaml (Adam,
Charbonnier on the clamped output) with the given network size; the step is
the trainer's own (:func:`ppmirnet.engine.trainer.optimize_step`) on random
batches. Prints one ``iteration_seconds: <s>`` line per iteration (the
protocol of a reference step, see benchmarks/training.py) and, on a GPU,
``peak_device_mb: <MB>``.
"""

import argparse
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("n_feat", "n_RRG", "n_MSRB", "batch", "patch", "iters", "threads"):
        p.add_argument("--" + name, type=int, required=True)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    args = p.parse_args(argv)
    import paddle

    from ppmirnet.config import load_config
    from ppmirnet.engine.env import set_device
    from ppmirnet.modeling import build_model
    from ppmirnet.engine.trainer import build_optimizer, optimize_step
    from ppmirnet.losses import build_loss

    # As tools/train.py with Global.cpu_threads: the math library's threads on CPU.
    set_device(args.device, cpu_threads=args.threads)
    cfg = load_config(os.path.join(ROOT, "configs", "mirnet_sidd.yaml"),
                      [f"Arch.n_feat={args.n_feat}", f"Arch.n_RRG={args.n_RRG}",
                       f"Arch.n_MSRB={args.n_MSRB}"])
    paddle.seed(0)
    model = build_model(cfg["Arch"])
    loss_fn = build_loss(cfg["Loss"])
    optimizer = build_optimizer(cfg["Optimizer"], model.parameters(),
                                cfg["LRScheduler"]["learning_rate"])
    shape = [args.batch, 3, args.patch, args.patch]
    noisy, clean = paddle.rand(shape), paddle.rand(shape)
    model.train()
    for _ in range(args.iters):
        tic = time.perf_counter()
        loss = optimize_step(model, loss_fn, optimizer, noisy, clean)
        float(loss)  # waits for the device
        print(f"iteration_seconds: {time.perf_counter() - tic:.6f}", flush=True)
    if args.device == "gpu":
        print(f"peak_device_mb: {paddle.device.cuda.max_memory_allocated() / 2**20:.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

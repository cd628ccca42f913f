"""Benchmark MIRNet's (or MIRNet-v2's) CPU runtimes against this machine's matrix-product rate.

    python benchmarks/run_benchmark.py            # full run, default model (about an hour on 2 cores)
    python benchmarks/run_benchmark.py --network MIRNetV2 --cases 256,512   # the same rows for MIRNet-v2
    python benchmarks/run_benchmark.py --quick    # tiny model, seconds (run by the test suite)
    python benchmarks/run_benchmark.py --network MIRNetV2 --cases 256,512 --threads 2 \
        --reference "PyTorch=/path/to/torch-venv/bin/python benchmarks/official_forward.py --repo /path/to/MIRNetv2"
    python benchmarks/run_benchmark.py --sections training --train_cases small,default \
        --train_reference "PyTorch=python /path/to/official_step.py" [--device gpu]

Prints one line per measurement and a markdown table; writes both, with
every raw number, to --output (JSON) and the same name with ``.md``.
"""

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppmirnet.cli import run_tool, str2bool  # noqa: E402
from ppmirnet.errors import UserError  # noqa: E402


def _csv(value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _profile(args, threads):
    """MACs per convolution kind and the time per operator of each runtime, printed and returned."""
    from harness import macs_by_kind, profile_onnxruntime, profile_paddle

    work_dir = args.work_dir
    if work_dir is None:
        raise UserError("--profile needs --work_dir (the exported benchmark model is kept there)")
    from harness import load_arch

    arch = load_arch(work_dir)
    size, n = args.profile_size, (threads or [2])[-1]
    kinds = macs_by_kind(arch, size, size)
    total = sum(kinds.values())
    lines = ["", f"Convolution MACs at {size}x{size}:", "", "| kind | GMACs | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v / 1e9:.1f} | {v / total:.1%} |" for k, v in kinds.items()]
    ops = profile_onnxruntime(os.path.join(work_dir, "model.onnx"), size, n)
    lines += ["", f"onnxruntime time per operator type, one warm {size}x{size} forward, {n} thread(s):", "",
              "| op | ms | share |", "|---|---:|---:|"]
    lines += [f"| {op} | {ms:.0f} | {share:.1%} |" for op, ms, share in ops[:12]]
    result = {"macs_by_kind": kinds, "onnxruntime_ms_by_op": ops}
    for legacy in (False, True):
        if legacy and not os.path.isfile(os.path.join(work_dir, "inference.pdmodel")):
            continue
        name = "inference.pdmodel, memory optim" if legacy else "inference.json"
        pd_ops = profile_paddle(work_dir, size, n, legacy)
        if not pd_ops:  # the legacy executor prints no per-operator table in every build
            continue
        lines += ["", f"Paddle Inference + oneDNN ({name}) time per operator, {size}x{size}, {n} thread(s), "
                  "mean of 2 runs (the first prepares the kernels):", "", "| op | ms | share |", "|---|---:|---:|"]
        lines += [f"| {op} | {ms:.0f} | {share:.1%} |" for op, ms, share in pd_ops[:12]]
        result["paddle_legacy_ms_by_op" if legacy else "paddle_ms_by_op"] = pd_ops
    for line in lines:
        print(line)
    result["lines"] = lines
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", type=str2bool, nargs="?", const=True, default=False,
                   help="tiny model and images: checks every path in seconds")
    p.add_argument("--paths", default=None, help="comma list of dygraph,paddle_onednn,paddle_native,onnxruntime")
    p.add_argument("--threads", default=None, help="comma list of thread counts (1,2)")
    p.add_argument("--cases", default=None, help="comma list of 256,512,12mp,12mp528,12mp256 (quick: 64,tiled)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per case, best kept")
    p.add_argument("--full_12mp", type=str2bool, nargs="?", const=True, default=False,
                   help="time every tile of the 12 MP cases (default: first tiles, rest extrapolated)")
    p.add_argument("--profile", type=str2bool, nargs="?", const=True, default=False,
                   help="also print the convolution MACs per kind and onnxruntime's time per operator type")
    p.add_argument("--profile_only", type=str2bool, nargs="?", const=True, default=False,
                   help="only the profile (needs --work_dir of an earlier run)")
    p.add_argument("--profile_size", type=int, default=256)
    p.add_argument("--network", default="MIRNet", choices=["MIRNet", "MIRNetV2"],
                   help="network of the inference section (default configuration; tiny with --quick)")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=COMMAND",
                   help="a reference implementation timed on the same untiled inputs (repeatable); "
                        "the protocol is harness.run_reference's, benchmarks/official_forward.py "
                        "follows it for the official PyTorch code")
    p.add_argument("--work_dir", default=None, help="keep the exported benchmark model here between runs")
    p.add_argument("--output", default=None, help="JSON results (default benchmarks/results/<full|quick>.json)")
    p.add_argument("--sections", default="inference", help="comma list of inference,training")
    p.add_argument("--train_cases", default=None, help="comma list of small,default (quick: quick)")
    p.add_argument("--train_reference", action="append", default=[], metavar="NAME=COMMAND",
                   help="a reference training step to compare with (repeatable); the protocol is in "
                        "benchmarks/training.py")
    p.add_argument("--train_iters", type=int, default=4, help="iterations per run (the first is discarded)")
    p.add_argument("--train_repeats", type=int, default=2, help="runs per peer, alternating peers")
    p.add_argument("--train_threads", type=int, default=2, help="CPU threads of every training peer")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="device of the training section")
    args = p.parse_args(argv)
    sections = _csv(args.sections) or []
    for name in sections:
        if name not in ("inference", "training"):
            raise UserError(f"unknown section {name!r} in --sections; valid: inference, training")
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
    from harness import PATHS, run_benchmark
    from ppmirnet.utils.io import atomic_path

    paths = _csv(args.paths)
    for name in paths or []:
        if name not in PATHS:
            raise UserError(f"unknown path {name!r} in --paths; valid: {', '.join(PATHS)}")
    try:
        threads = [int(t) for t in _csv(args.threads) or []] or None
    except ValueError:
        raise UserError(f"--threads must be a comma list of integers, got {args.threads!r}") from None
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                         "quick.json" if args.quick else "full.json")
    from training import parse_reference

    try:
        references = [parse_reference(r) for r in args.train_reference]
        inference_references = [parse_reference(r, "--reference") for r in args.reference]
    except ValueError as err:
        raise UserError(str(err)) from None
    for name, _ in inference_references:
        if name in PATHS:
            raise UserError(f"--reference {name!r}: the name of a runtime this benchmark measures; "
                            "give the reference another name")
    if args.profile_only or "inference" not in sections:
        result = {"quick": args.quick}
    if args.profile_only:
        if not args.work_dir or not os.path.isfile(os.path.join(args.work_dir, "model.onnx")):
            raise UserError("--profile_only needs --work_dir of an earlier run (with model.onnx)")
    elif "inference" in sections:
        try:
            result = run_benchmark(args.quick, args.work_dir, paths, threads, _csv(args.cases), args.repeats,
                                   args.full_12mp, log=lambda line: print(line, flush=True),
                                   network=args.network, references=inference_references)
        except (ValueError, RuntimeError) as err:
            raise UserError(str(err)) from err
        print(result["table"])
    if "training" in sections:
        from training import run_training_benchmark

        cases = _csv(args.train_cases) or (["quick"] if args.quick else ["small", "default"])
        try:
            result["training"] = run_training_benchmark(
                cases, references, repeats=args.train_repeats, iters=args.train_iters,
                threads=args.train_threads, device=args.device, log=lambda line: print(line, flush=True))
        except (ValueError, RuntimeError) as err:
            raise UserError(str(err)) from err
        print(result["training"]["table"])
    if args.profile or args.profile_only:
        result["profile"] = _profile(args, threads)
    with atomic_path(output) as tmp:
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
    md = os.path.splitext(output)[0] + ".md"
    with atomic_path(md) as tmp:
        with open(tmp, "w") as f:
            if "table" in result:
                f.write(f"Machine: {result['machine']}\n\n{result['table']}\n")
            if "training" in result:
                f.write(f"\nTraining iterations:\n\n{result['training']['table']}\n")
            for line in result.get("profile", {}).get("lines", []):
                f.write(line + "\n")
    print(f"wrote {output} and {md}")


if __name__ == "__main__":
    sys.exit(run_tool(main))

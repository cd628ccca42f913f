"""Training iteration time and peak memory of ppmirnet against reference steps, side by side.

Every peer is a command that follows one protocol: it accepts
``--n_feat --n_RRG --n_MSRB --batch --patch --iters --threads --device`` and
prints one ``iteration_seconds: <s>`` line per training iteration (optionally
``peak_device_mb: <MB>`` on a GPU). ``benchmarks/train_step.py`` is
ppmirnet's; a reference step (e.g. a script around the official PyTorch
MIRNet with Adam and the Charbonnier loss) is given as ``NAME=COMMAND``.

Each peer runs in a child process (its peak RSS is the child's), the peers
alternate within every repeat (ABBA order) so that a shared machine slows
them alike, the first iteration of a run is discarded (set-up), and a run's
time is the median of the others; the best run of each peer is reported with
its ratio to the best peer of the same case.
"""

import os
import shlex
import statistics
import sys

from harness import THREAD_VARS, printed, run_measured

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = {
    "small": dict(n_feat=32, n_RRG=1, n_MSRB=1, batch=4, patch=64),
    "default": dict(n_feat=64, n_RRG=3, n_MSRB=2, batch=2, patch=128),
    "quick": dict(n_feat=8, n_RRG=1, n_MSRB=1, batch=2, patch=32),
}
OWN = "ppmirnet"


def parse_reference(text, flag="--train_reference"):
    """``NAME=COMMAND`` (the value of ``flag``) -> (name, argv); raises ValueError on a bad spec."""
    name, sep, command = text.partition("=")
    if not sep or not name.strip() or not command.strip():
        raise ValueError(f"{flag} must be NAME=COMMAND, got {text!r}")
    return name.strip(), shlex.split(command)


def run_step(argv, case, iters, threads, device):
    """Run one peer once; returns ``{"iteration_s": [...], "peak_rss_mb", "peak_device_mb"}``."""
    args = list(argv)
    for key, value in dict(case, iters=iters, threads=threads).items():
        args += [f"--{key}", str(value)]
    args += ["--device", device]
    env = dict(os.environ, GLOG_minloglevel="2", **{v: str(threads) for v in THREAD_VARS})
    code, stdout, stderr, peak = run_measured(args, env)
    if code != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({code}):\n{stderr[-3000:]}")
    times, device_mb = printed(stdout, "iteration_seconds"), printed(stdout, "peak_device_mb")
    if len(times) != iters:
        raise RuntimeError(f"{' '.join(args)} printed {len(times)} iteration_seconds lines, expected {iters}")
    return {"iteration_s": times, "peak_rss_mb": peak, "peak_device_mb": device_mb[-1] if device_mb else None}


def run_training_benchmark(cases, references, repeats=2, iters=4, threads=2, device="cpu",
                           own=None, log=print):
    """Measure every peer on every case; returns ``{"rows": [...], "table": markdown}``.

    ``references``: list of (name, argv). ``own``: argv of ppmirnet's step
    (default: this Python on benchmarks/train_step.py).
    """
    if iters < 2:
        raise ValueError("--train_iters must be at least 2 (the first iteration is discarded)")
    peers = [(OWN, own or [sys.executable, os.path.join(HERE, "train_step.py")])] + list(references)
    rows = []
    for case_name in cases:
        if case_name not in CASES:
            raise ValueError(f"unknown training case {case_name!r}; valid: {', '.join(CASES)}")
        case = CASES[case_name]
        runs = {name: [] for name, _ in peers}
        for rep in range(repeats):
            order = peers if rep % 2 == 0 else peers[::-1]
            for name, argv in order:
                r = run_step(argv, case, iters, threads, device)
                r["seconds"] = statistics.median(r["iteration_s"][1:])
                runs[name].append(r)
                log(f"[train] {case_name} {name} repeat {rep + 1}/{repeats}: "
                    f"{r['seconds']:.3f} s/iteration, peak RSS {r['peak_rss_mb']:.0f} MB"
                    + (f", device {r['peak_device_mb']:.0f} MB" if r["peak_device_mb"] else ""))
        best = {name: min(rs, key=lambda r: r["seconds"]) for name, rs in runs.items()}
        fastest = min(r["seconds"] for r in best.values())
        leanest = min(max(r["peak_rss_mb"] for r in runs[n]) for n in runs)
        for name, _ in peers:
            peak = max(r["peak_rss_mb"] for r in runs[name])
            dev = [r["peak_device_mb"] for r in runs[name] if r["peak_device_mb"]]
            rows.append({"case": case_name, **case, "peer": name, "device": device, "threads": threads,
                         "seconds": best[name]["seconds"], "ratio_to_best": best[name]["seconds"] / fastest,
                         "peak_rss_mb": peak, "rss_ratio_to_best": peak / leanest,
                         "peak_device_mb": max(dev) if dev else None,
                         "runs": [r["iteration_s"] for r in runs[name]]})
    return {"rows": rows, "table": format_table(rows)}


def format_table(rows):
    lines = ["| case | network, batch x patch | peer | s / iteration | vs best | peak RSS MB | vs best | device MB |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        net = f"n_feat {r['n_feat']}, {r['n_RRG']} RRG x {r['n_MSRB']} MSRB, {r['batch']} x {r['patch']}²"
        dev = f"{r['peak_device_mb']:.0f}" if r["peak_device_mb"] else "-"
        lines.append(f"| {r['case']} ({r['device']}, {r['threads']} thr) | {net} | {r['peer']} | "
                     f"{r['seconds']:.3f} | {r['ratio_to_best']:.2f}x | {r['peak_rss_mb']:.0f} | "
                     f"{r['rss_ratio_to_best']:.2f}x | {dev} |")
    return "\n".join(lines)

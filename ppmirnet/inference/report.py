"""The ``--benchmark`` report, in the layout of PaddlePaddle's AutoLog.

AutoLog is not on the package registry, so its report is produced here:
sections of ``key: value`` lines with AutoLog's key names
(``preprocess_time(ms)``, ``cpu_rss(MB)``, ...) so the usual TIPC log
parsers read it.
"""

import datetime
import os
import platform
import resource
import subprocess
import sys

from ..utils.io import atomic_path

LOG_API_VERSION = "1.0"


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB.

    Read from ``VmHWM`` in ``/proc/self/status``: ``getrusage``'s
    ``ru_maxrss`` survives ``exec``, so a child started from a big parent
    would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _os_version():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def gpu_memory_mb(gpu_id):
    """GPU memory held by this process on ``gpu_id`` in MB, or None if unknown."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits",
             f"--id={gpu_id}"], capture_output=True, text=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(os.getpid()):
            return float(parts[1])
    return None


def build_report(engine, timer, model_name, batch_size, input_shapes, tile=0, gpu_id=0):
    """The report as a list of ``(section, [(key, value), ...])``.

    Args:
        engine (dict): the predictor's :meth:`describe` output.
        timer (StageTimer): per-stage times and the number of images.
        model_name (str): shown as ``model_name``.
        batch_size (int): images per predictor call.
        input_shapes (list[tuple]): distinct HxW of the inputs.
        tile (int): tile size used, 0 for none.
        gpu_id (int): GPU queried for memory when on GPU.
    """
    try:
        import paddle
    except ImportError:  # the onnxruntime path runs without Paddle
        paddle = None
    on_gpu = engine.get("runtime_device") == "gpu"
    with_cuda = paddle is not None and paddle.is_compiled_with_cuda()
    cuda = paddle.version.cuda() if with_cuda else None
    cudnn = paddle.version.cudnn() if with_cuda else None
    gpu_mem = gpu_memory_mb(gpu_id) if on_gpu else None
    shapes = ", ".join(f"3x{h}x{w}" for h, w in input_shapes) or "none"
    return [
        ("Env info", [
            ("OS_version", _os_version()),
            ("CUDA_version", cuda),
            ("CUDNN_version", cudnn),
            ("python_version", platform.python_version()),
        ]),
        ("Paddle info", [
            ("paddle_version", paddle.__version__ if paddle else None),
            ("paddle_commit", paddle.version.commit if paddle else None),
            ("runtime", engine.get("runtime")),
            ("log_api_version", LOG_API_VERSION),
        ]),
        ("Conf info", [
            ("runtime_device", engine.get("runtime_device")),
            ("ir_optim", engine.get("ir_optim")),
            ("enable_memory_optim", engine.get("enable_memory_optim")),
            ("enable_tensorrt", engine.get("enable_tensorrt")),
            ("enable_mkldnn", engine.get("enable_mkldnn")),
            ("cpu_math_library_num_threads", engine.get("cpu_math_library_num_threads")),
        ]),
        ("Model info", [
            ("model_name", model_name),
            ("model_file", engine.get("program")),
            ("precision", engine.get("precision")),
        ]),
        ("Data info", [
            ("batch_size", batch_size),
            ("input_shape", shapes),
            ("data_num", timer.images),
            ("tile", tile),
        ]),
        ("Perf info", [
            ("cpu_rss(MB)", f"{peak_rss_mb():.1f}"),
            ("gpu_rss(MB)", None if gpu_mem is None else f"{gpu_mem:.1f}"),
            ("gpu_util", None),
            ("total time spent(s)", f"{timer.total_seconds:.4f}"),
            ("preprocess_time(ms)", f"{timer.ms_per_image('preprocess'):.4f}"),
            ("inference_time(ms)", f"{timer.ms_per_image('inference'):.4f}"),
            ("postprocess_time(ms)", f"{timer.ms_per_image('postprocess'):.4f}"),
        ]),
    ]


def format_report(sections, now=None):
    """Render :func:`build_report`'s sections as AutoLog-style log lines."""
    stamp = (now or datetime.datetime.now()).strftime("%Y/%m/%d %H:%M:%S")
    prefix = f"[{stamp}] ppmirnet INFO:"
    lines = []
    for title, items in sections:
        lines.append(f"{prefix} {f' {title} ':-^56}")
        for key, value in items:
            lines.append(f"{prefix}  {key}: {value}")
    return "\n".join(lines) + "\n"


def _is_stdout(path):
    """Whether ``path`` is the file this process's stdout is redirected to."""
    try:
        out = os.fstat(sys.stdout.fileno())
        st = os.stat(path)
    except (OSError, AttributeError, ValueError):
        return False
    return (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino)


def save_report(text, path):
    """Write the report to ``path`` atomically.

    When ``path`` is also where stdout is redirected (TIPC runs
    ``infer.py ... --save_log_path=F > F``), the printed report is already
    in it; replacing the file would cut off the rest of the output.
    """
    if _is_stdout(path):
        return
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)

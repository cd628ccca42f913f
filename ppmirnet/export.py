"""Export a MIRNet or MIRNet-v2 to a static inference model with dynamic batch, height and width.

``export_inference_model`` writes ``<prefix>.json`` + ``<prefix>.pdiparams``
(Paddle 3's PIR program, read by Paddle Inference 3.x) and, with
``legacy_format=True``, also ``<prefix>.pdmodel`` (the program format read by
Paddle 2.6 and Paddle Serving's ``LocalPredictor``). Both programs use the
same ``.pdiparams``. Paddle 2.6 has no PIR: there only the legacy format
exists and is written (:func:`ppmirnet.compat.program_formats` says which
formats the installed Paddle has).

Paddle 3 picks the program format once, at start-up, from the environment
variable ``FLAGS_enable_pir_api``, so the legacy program is written by a
child process (``python -m ppmirnet.export``) started with that flag off.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from .compat import pir_enabled, program_formats
from .errors import UserError
from .utils.io import ensure_dir

INPUT_NAME = "x"


def _jit_save(model, path_prefix, forms=None):
    import paddle

    from .modeling.export_forms import export_forms

    model.eval()
    channels = model.arch["in_channels"]
    spec = [paddle.static.InputSpec([None, channels, None, None], "float32", INPUT_NAME)]
    with export_forms(model, forms):
        static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
        paddle.jit.save(static, path_prefix)


def _export_in_child(weights, arch, out_prefix, pir, forms=None):
    # ``arch`` is an Arch config section: the network's name and its arguments.
    """Write one program format from a fresh process (see the module docstring)."""
    env = dict(os.environ, FLAGS_enable_pir_api="1" if pir else "0")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in [root, env.get("PYTHONPATH", "")] if p)
    cmd = [sys.executable, "-m", "ppmirnet.export", "--arch", json.dumps(arch),
           "--weights", weights, "--out", out_prefix] + (["--forms", forms] if forms else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        kind = "PIR" if pir else "legacy"
        raise RuntimeError(f"{kind} export failed:\n{proc.stderr[-4000:]}")


def _export_both_formats(model, tmp, prefix, forms=None):
    """Write the PIR and the legacy program with one shared ``.pdiparams``.

    The parameter file stores tensors ordered by their generated names
    (``conv2d_12.w_0``...), which depend on what the process built before.
    Both programs are therefore written by fresh child processes that build
    the network the same way, so their parameter files are byte-identical and
    either program can use it. The program for OpenVINO (``forms``
    ``"openvino"``) is read from the ``.pdmodel`` only: only that one is written.
    """
    import paddle

    from .modeling import arch_section

    weights = os.path.join(tmp, "weights.pdparams")
    paddle.save(model.state_dict(), weights)
    formats = (False,) if forms == "openvino" else (True, False)
    for pir in formats:
        out_prefix = os.path.join(tmp, "pir" if pir else "legacy", prefix)
        _export_in_child(weights, arch_section(model), out_prefix, pir, forms)
    legacy_params = os.path.join(tmp, "legacy", prefix + ".pdiparams")
    if len(formats) == 1:
        os.replace(legacy_params, os.path.join(tmp, prefix + ".pdiparams"))
        os.replace(os.path.join(tmp, "legacy", prefix + ".pdmodel"), os.path.join(tmp, prefix + ".pdmodel"))
        return
    pir_params = os.path.join(tmp, "pir", prefix + ".pdiparams")
    with open(pir_params, "rb") as a, open(legacy_params, "rb") as b:
        if a.read() != b.read():
            raise RuntimeError("legacy and PIR exports wrote different parameter files")
    for src in (os.path.join(tmp, "pir", prefix + ".json"), pir_params,
                os.path.join(tmp, "legacy", prefix + ".pdmodel")):
        os.replace(src, os.path.join(tmp, os.path.basename(src)))


def export_inference_model(model, save_dir, legacy_format=False, prefix="inference", forms=None):
    """Export ``model`` (a network of ``ppmirnet.modeling.MODELS``) to ``save_dir``.

    Writes the first of :func:`ppmirnet.compat.program_formats` and, with
    ``legacy_format``, also ``.pdmodel`` (on Paddle 2.6 both are the same
    ``.pdmodel``). Files appear in ``save_dir`` only once every format was
    written. ``forms="openvino"`` writes only the ``.pdmodel`` OpenVINO
    reads (see :mod:`ppmirnet.modeling.export_forms`; it needs ``legacy_format``).
    Returns the written file paths.
    """
    if forms == "openvino" and not legacy_format:
        raise ValueError("the OpenVINO program is a legacy .pdmodel: pass legacy_format=True")
    ensure_dir(save_dir)
    written = []
    with tempfile.TemporaryDirectory(dir=save_dir, prefix=".export-") as tmp:
        if legacy_format and pir_enabled():
            _export_both_formats(model, tmp, prefix, forms)
        else:
            _jit_save(model, os.path.join(tmp, prefix), forms)
        for ext in (".json", ".pdmodel", ".pdiparams"):
            src = os.path.join(tmp, prefix + ext)
            if os.path.exists(src):
                dst = os.path.join(save_dir, prefix + ext)
                os.replace(src, dst)
                written.append(dst)
    if not any(p.endswith((".json", ".pdmodel")) for p in written):
        raise UserError(f"export wrote no program file to {save_dir}")
    return written


def find_program(model_dir, prefix="inference", prefer_legacy=False):
    """Return ``(program file, params file)`` of an exported model in ``model_dir``.

    Prefers the PIR ``.json`` program unless ``prefer_legacy``; raises
    :class:`UserError` naming the folder when no exported model is there.
    """
    params = os.path.join(model_dir, prefix + ".pdiparams")
    # Only what the installed Paddle reads (Paddle 2.6 cannot run a .json program).
    order = [ext for ext in ((".pdmodel", ".json") if prefer_legacy else (".json", ".pdmodel"))
             if ext in program_formats()]
    for ext in order:
        program = os.path.join(model_dir, prefix + ext)
        if os.path.isfile(program) and os.path.isfile(params):
            return program, params
    if ".json" not in program_formats() and os.path.isfile(os.path.join(model_dir, prefix + ".json")):
        raise UserError(
            f"{model_dir} holds only the PIR program {prefix}.json, which this PaddlePaddle "
            f"(2.6) cannot run: export with --legacy_format to also write {prefix}.pdmodel"
        )
    raise UserError(
        f"no exported model in {model_dir} (expected {prefix}.json or {prefix}.pdmodel "
        f"with {prefix}.pdiparams; run tools/export_model.py first)"
    )


def _child_main(argv=None):
    parser = argparse.ArgumentParser(description="internal: write the legacy program")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--forms", default=None)
    args = parser.parse_args(argv)
    import paddle

    from .modeling import build_model

    model = build_model(json.loads(args.arch))
    model.set_state_dict(paddle.load(args.weights))
    _jit_save(model, args.out, args.forms)


if __name__ == "__main__":
    _child_main()

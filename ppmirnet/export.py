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
import struct
import subprocess
import sys

from .compat import pir_enabled, program_formats
from .errors import UserError
from .utils.io import atomic_folder

# Bytes per element of Paddle's VarType data types (framework.proto), as stored in .pdiparams.
_DTYPE_BYTES = {0: 1, 1: 2, 2: 4, 3: 8, 4: 2, 5: 4, 6: 8, 20: 1, 21: 1, 22: 2, 23: 8, 24: 16}

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
    # Paddle 2.6 also writes <prefix>.pdiparams.info: variable attributes for
    # fine-tuning through paddle.jit.load, which inference never reads. An
    # export is the program and its parameters, on every Paddle line.
    info = path_prefix + ".pdiparams.info"
    if os.path.exists(info):
        os.remove(info)


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
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise UserError(f"the {kind} export failed: {lines[-1] if lines else f'exit {proc.returncode}'}")


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

    work = os.path.join(tmp, ".work")
    weights = os.path.join(work, "weights.pdparams")
    os.makedirs(work)
    paddle.save(model.state_dict(), weights)
    formats = (False,) if forms == "openvino" else (True, False)
    for pir in formats:
        out_prefix = os.path.join(work, "pir" if pir else "legacy", prefix)
        _export_in_child(weights, arch_section(model), out_prefix, pir, forms)
    legacy_params = os.path.join(work, "legacy", prefix + ".pdiparams")
    if len(formats) == 1:
        for ext in (".pdiparams", ".pdmodel"):
            os.replace(os.path.join(work, "legacy", prefix + ext), os.path.join(tmp, prefix + ext))
        shutil.rmtree(work)
        return
    pir_params = os.path.join(work, "pir", prefix + ".pdiparams")
    with open(pir_params, "rb") as a, open(legacy_params, "rb") as b:
        if a.read() != b.read():
            raise RuntimeError("legacy and PIR exports wrote different parameter files")
    for src in (os.path.join(work, "pir", prefix + ".json"), pir_params,
                os.path.join(work, "legacy", prefix + ".pdmodel")):
        os.replace(src, os.path.join(tmp, os.path.basename(src)))
    shutil.rmtree(work)


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
    expected = parameter_bytes(model)

    def check(tmp):
        # Paddle's native writers do not report a full disk: read back what they wrote.
        names = [prefix + ext for ext in (".json", ".pdmodel", ".pdiparams")
                 if os.path.exists(os.path.join(tmp, prefix + ext))]
        if not any(n.endswith((".json", ".pdmodel")) for n in names):
            raise UserError(f"export wrote no program file to {save_dir}")
        for name in names:
            try:
                check_export_file(os.path.join(tmp, name), expected)
            except ValueError as err:
                raise UserError(f"cannot write {os.path.join(save_dir, name)}: {err} (disk full, "
                                f"or a file size limit?); nothing was written") from None
        written.extend(os.path.join(save_dir, n) for n in names)

    written = []
    with atomic_folder(save_dir, check) as tmp:
        if legacy_format and pir_enabled():
            _export_both_formats(model, tmp, prefix, forms)
        else:
            _jit_save(model, os.path.join(tmp, prefix), forms)
    return written


def parameter_bytes(model):
    """The bytes of tensor data an export of ``model`` stores (each shared tensor once)."""
    sizes = {}
    for value in model.state_dict().values():
        numel = 1
        for n in value.shape:
            numel *= int(n)
        sizes[value.name] = numel * value.element_size()
    return sum(sizes.values())


def _varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("a tensor header is cut short")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _tensor_desc(desc):
    """``(data type, dims)`` of a serialised ``VarType.TensorDesc`` (field 1 varint, 2 int64s)."""
    dtype, dims, pos = None, [], 0
    while pos < len(desc):
        key, pos = _varint(desc, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(desc, pos)
            if field == 1:
                dtype = value
            elif field == 2:
                dims.append(value)
        elif wire == 2:
            length, pos = _varint(desc, pos)
            if field == 2:  # packed dims
                end = pos + length
                while pos < end:
                    value, pos = _varint(desc, pos)
                    dims.append(value)
            pos += length if field != 2 else 0
        else:
            raise ValueError("a tensor header is not one Paddle writes")
    if dtype not in _DTYPE_BYTES:
        raise ValueError("a tensor header is not one Paddle writes")
    return dtype, [d - (1 << 64) if d >= 1 << 63 else d for d in dims]


def params_data_bytes(path):
    """The bytes of tensor data in the ``.pdiparams`` file ``path``, reading every tensor header.

    Raises ``ValueError`` saying what is wrong when the file is empty, cut
    short or not a Paddle parameter file.
    """
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ValueError("the file is empty")
    pos = total = 0
    try:
        while pos < len(data):
            _version, lod_level = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if lod_level > 16:
                raise ValueError("not a Paddle parameter file")
            for _ in range(lod_level):
                (size,) = struct.unpack_from("<Q", data, pos)
                pos += 8 + size
            _version, desc_size = struct.unpack_from("<Ii", data, pos)
            pos += 8
            if not 0 < desc_size <= 4096 or pos + desc_size > len(data):
                raise ValueError("not a Paddle parameter file, or cut short")
            dtype, dims = _tensor_desc(data[pos:pos + desc_size])
            pos += desc_size
            numel = 1
            for d in dims:
                if d < 0:
                    raise ValueError("not a Paddle parameter file")
                numel *= d
            size = numel * _DTYPE_BYTES[dtype]
            if pos + size > len(data):
                raise ValueError(f"cut short: {len(data)} bytes, a tensor ends at {pos + size}")
            pos += size
            total += size
    except struct.error:
        raise ValueError(f"cut short ({len(data)} bytes) inside a tensor header") from None
    return total


def check_export_file(path, expected_bytes=None):
    """Raise ``ValueError`` saying why ``path`` (``.json``, ``.pdmodel`` or ``.pdiparams``) is not whole.

    A ``.json`` program must parse as JSON, a ``.pdmodel`` as a program with
    feed and fetch operators, a ``.pdiparams`` must hold whole tensors (and
    ``expected_bytes`` of tensor data, when given).
    """
    size = os.path.getsize(path)
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as f:
                json.load(f)
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"the program is not complete JSON ({size} bytes)") from None
    elif path.endswith(".pdmodel"):
        from .inference.paddle_predictor import _read_program_desc

        desc = _read_program_desc(path)
        ops = {op.type for op in desc.blocks[0].ops} if desc and desc.blocks else set()
        if not {"feed", "fetch"} <= ops:
            raise ValueError(f"the program is not a complete Paddle program ({size} bytes)")
    else:
        got = params_data_bytes(path)
        if expected_bytes is not None and got < expected_bytes:
            raise ValueError(f"it holds {got} of the {expected_bytes} bytes of parameters")


def check_exported(program, params, parse_pdmodel=True):
    """Raise :class:`UserError` naming the damaged file of an exported model, if one is.

    ``parse_pdmodel=False`` leaves a ``.pdmodel`` to the caller's own parse.
    """
    for path in (program, params):
        if path.endswith(".pdmodel") and not parse_pdmodel:
            continue
        try:
            check_export_file(path)
        except ValueError as err:
            raise UserError(f"{path} is damaged: {err}; export the model again with "
                            f"tools/export_model.py") from None


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

    from .modeling import build_model
    from .safe_pickle import load_paddle

    model = build_model(json.loads(args.arch))
    model.set_state_dict(load_paddle(args.weights))
    _jit_save(model, args.out, args.forms)


if __name__ == "__main__":
    _child_main()

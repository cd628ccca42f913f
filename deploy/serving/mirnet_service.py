"""Request handling, configuration and model conversion for Paddle Serving.

The Paddle Serving pipeline (``web_service.py`` beside this file) runs in
its own Python 3.8/3.9 environment; everything it needs that is not Paddle
Serving itself lives here, imported as ``mirnet_service`` by the scripts of
this folder and by the tests, which reach it without a server. Images go
through :mod:`ppmirnet.processing` like every other front end; ``-o``
overrides through :func:`ppmirnet.config.split_override`.

Protocol (Paddle Serving's pipeline HTTP gateway)::

    POST /mirnet/prediction  {"key": ["image"], "value": ["<base64 PNG/JPEG/...>"]}
    -> {"err_no": 0, "err_msg": "", "key": ["image", "model", "task"],
        "value": ["<base64 PNG>", "MIRNet", "denoising"]}

The reply image has the input's size, bit depth and channel layout; ``model``
and ``task`` say what the service runs (``op.mirnet.model`` of its config).
"""

import base64
import binascii
import os
import shutil
import socket
import struct
import tempfile

from ppmirnet.config import override_value, split_override
from ppmirnet.errors import ConfigError, ConversionError, MissingDependencyError, UserError

IMAGE_KEY = "image"
OP_NAME = "mirnet"
PROCESSING_KEY = "processing"
DEFAULT_PROCESSING = {
    # Images with more pixels are refused before they are decoded.
    "max_pixels": 4096 * 4096,
    # Images larger than this on either side are restored tile by tile, so a
    # request's memory is bounded by the tile, not by the image.
    "tile": 512,
    "tile_overlap": 32,
    # With tile 0: a memory budget per serving process (e.g. "3G"; 0: none).
    # Whole images whose predicted peak fits it, else the largest tiles that
    # fit (ppmirnet.memory); an image that cannot fit is refused (5003).
    "max_memory": 0,
}

# What the service restores (the same network serves every task of the paper),
# named in its startup log and in every reply.
MODEL_KEY = "model"
DEFAULT_MODEL = {"name": "MIRNet", "task": "denoising"}

# Product error numbers, reported as ``err_no`` next to Paddle Serving's own.
ERR_BAD_REQUEST = 5001
ERR_BAD_IMAGE = 5002
ERR_TOO_LARGE = 5003


class RequestError(UserError):
    """A request the service refuses; ``code`` becomes the reply's ``err_no``."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- requests


def _b64decode(text, what):
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not isinstance(text, str):
        raise RequestError(ERR_BAD_REQUEST, f"{what} must be a base64 string")
    if text.startswith("data:") and "," in text:
        # Browsers hand out data URLs ("data:image/png;base64,...").
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    if not text:
        raise RequestError(ERR_BAD_REQUEST, f"{what} is empty")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(ERR_BAD_REQUEST, f"{what} is not valid base64") from None


def image_size_from_header(data):
    """``(height, width)`` read from a PNG or JPEG header, or None if not found.

    Lets the service refuse a huge image before decoding it: a few kilobytes
    of PNG can decode to gigabytes.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            # Start-of-frame markers carry the size; C4, C8 and CC do not.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5:i + 9])
                return height, width
            i += 2 + length
    return None


def _check_size(height, width, max_pixels):
    if max_pixels and height * width > max_pixels:
        raise RequestError(
            ERR_TOO_LARGE,
            f"image of {width}x{height} ({height * width} pixels) is larger than the "
            f"service's limit of {max_pixels} pixels (op.{OP_NAME}.{PROCESSING_KEY}.max_pixels)",
        )


def _check_budget(height, width, budget):
    if budget is None:
        return
    from ppmirnet.memory import check_minimum

    try:
        check_minimum(height, width, budget, name="image")
    except UserError as err:
        raise RequestError(ERR_TOO_LARGE, str(err)) from None


def memory_plan(processing, height, width, device="cpu"):
    """``(tile, overlap)`` for a ``height`` x ``width`` request under the op's settings.

    ``tile`` when set; else with ``max_memory`` the plan of :func:`ppmirnet.memory.plan`
    for the served network on Paddle Inference (0: whole image); else 0. An image
    that cannot fit the budget is a :class:`RequestError` (5003).
    """
    tile, overlap = processing["tile"], processing["tile_overlap"]
    if tile or not processing.get("max_memory"):
        return tile, overlap
    from ppmirnet import memory

    budget = memory.Budget(processing["max_memory"], processing["max_memory"] if device == "gpu" else None,
                           f"op.{OP_NAME}.{PROCESSING_KEY}.max_memory")
    model = memory.MemoryModel({"name": processing.get(MODEL_KEY, DEFAULT_MODEL)["name"]},
                               "paddle-inference", device)
    try:
        how = memory.plan(model, budget, height, width, overlap=overlap)
    except UserError as err:
        raise RequestError(ERR_TOO_LARGE, str(err)) from None
    return how.tile, min(overlap, how.tile // 4) if how.tile else overlap


def decode_request(fields, max_pixels=DEFAULT_PROCESSING["max_pixels"], budget=None):
    """Decode a request's fields (``{"image": "<base64>"}``) into ``(rgb, ImageInfo)``.

    Raises :class:`RequestError` with a message fit for the reply on a
    missing key, an empty value, bad base64, bytes that are not an image, an
    image over ``max_pixels`` or one whose arrays alone exceed ``budget``
    (a :class:`ppmirnet.memory.Budget`).
    """
    from ppmirnet.processing import decode_image

    if not isinstance(fields, dict) or IMAGE_KEY not in fields:
        got = sorted(fields) if isinstance(fields, dict) else type(fields).__name__
        raise RequestError(
            ERR_BAD_REQUEST, f'request must have key "{IMAGE_KEY}" (base64 image), got keys {got}'
        )
    data = _b64decode(fields[IMAGE_KEY], f'"{IMAGE_KEY}"')
    size = image_size_from_header(data)
    if size is not None:
        _check_size(size[0], size[1], max_pixels)
        _check_budget(size[0], size[1], budget)
    try:
        rgb, info = decode_image(data, f'"{IMAGE_KEY}"')
    except UserError as err:
        raise RequestError(ERR_BAD_IMAGE, str(err)) from None
    _check_size(info.height, info.width, max_pixels)
    _check_budget(info.height, info.width, budget)
    return rgb, info


def encode_reply(rgb, info):
    """Base64 text of the restored image as PNG (input's depth and layout)."""
    from ppmirnet.processing import encode_png

    return base64.b64encode(encode_png(rgb, info)).decode("ascii")


def build_request(image_bytes):
    """The JSON body that asks the service to restore ``image_bytes``."""
    return {"key": [IMAGE_KEY], "value": [base64.b64encode(image_bytes).decode("ascii")]}


def parse_reply(reply):
    """PNG bytes of the restored image from a decoded JSON reply.

    Raises :class:`UserError` carrying the service's ``err_no`` and ``err_msg``
    when the request failed.
    """
    if not isinstance(reply, dict) or "err_no" not in reply:
        raise UserError(f"not a Paddle Serving pipeline reply: {str(reply)[:200]}")
    if reply["err_no"] != 0:
        raise UserError(f"service error {reply['err_no']}: {reply.get('err_msg', '')}")
    fields = dict(zip(reply.get("key", []), reply.get("value", [])))
    if IMAGE_KEY not in fields:
        raise UserError(f'reply has no "{IMAGE_KEY}" field (keys: {sorted(fields)})')
    return base64.b64decode(fields[IMAGE_KEY])


# ------------------------------------------------------------ configuration


def _parse_value(text, old, item):
    if isinstance(old, str) or text == "":
        # Keep strings as written: devices "0" must stay the string "0".
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text
    return override_value(text, item)


def apply_overrides(conf, overrides):
    """Apply ``a.b.c=value`` overrides to the nested dict ``conf`` (in place).

    Values are parsed as YAML (never evaluated), except where the key already
    holds a string, which keeps the text as given. An unknown section is an
    error; a new leaf key is allowed (Paddle Serving has optional keys).
    """
    for item in overrides:
        parts, text = split_override(item)
        node = conf
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: no section {'.'.join(parts[:i + 1])} in the config")
            node = nxt
        node[parts[-1]] = _parse_value(text, node.get(parts[-1]), item)
    return conf


def load_service_config(path, overrides=()):
    """Read the service's ``config.yml``, apply overrides, check it.

    Returns ``(pipeline_conf, processing)``: the dict handed to Paddle
    Serving (with ``model_config`` made absolute, relative paths being relative
    to the config file) and the op's own settings, taken out of it: the
    processing numbers and, under ``"model"``, the ``{"name", "task"}`` of
    ``op.mirnet.model``.
    """
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"config not found: {path}")
    with open(path, "r", encoding="utf-8") as f:
        try:
            conf = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(conf, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    apply_overrides(conf, overrides)
    op = (conf.get("op") or {}).get(OP_NAME)
    if not isinstance(op, dict):
        raise ConfigError(f"{path}: missing section op.{OP_NAME}")
    processing = dict(DEFAULT_PROCESSING)
    given = op.pop(PROCESSING_KEY, None) or {}
    unknown = sorted(set(given) - set(DEFAULT_PROCESSING))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) op.{OP_NAME}.{PROCESSING_KEY}.{unknown[0]} "
            f"(known: {', '.join(sorted(DEFAULT_PROCESSING))})"
        )
    for key, value in given.items():
        if key == "max_memory":
            if value in (0, None, ""):
                processing[key] = 0
                continue
            from ppmirnet.memory import parse_size

            try:
                processing[key] = parse_size(value, f"op.{OP_NAME}.{PROCESSING_KEY}.max_memory")
            except UserError as err:
                raise ConfigError(f"{path}: {err}") from None
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{path}: op.{OP_NAME}.{PROCESSING_KEY}.{key} must be an integer >= 0")
        processing[key] = value
    model = dict(DEFAULT_MODEL)
    given = op.pop(MODEL_KEY, None) or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{path}: op.{OP_NAME}.{MODEL_KEY} must be a mapping with name and task")
    unknown = sorted(set(given) - set(DEFAULT_MODEL))
    if unknown:
        raise ConfigError(f"{path}: unknown key op.{OP_NAME}.{MODEL_KEY}.{unknown[0]} "
                          f"(known: {', '.join(sorted(DEFAULT_MODEL))})")
    for key, value in given.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: op.{OP_NAME}.{MODEL_KEY}.{key} must be a non-empty string")
        model[key] = value.strip()
    tile = processing["tile"]
    if tile and (tile % 8 or processing["tile_overlap"] >= tile):
        raise ConfigError(
            f"{path}: op.{OP_NAME}.{PROCESSING_KEY}.tile must be a multiple of 8 larger than tile_overlap"
        )
    service = op.get("local_service_conf")
    if not isinstance(service, dict) or not service.get("model_config"):
        raise ConfigError(f"{path}: missing op.{OP_NAME}.local_service_conf.model_config")
    model_config = os.path.join(os.path.dirname(os.path.abspath(path)), str(service["model_config"]))
    if not os.path.isfile(os.path.join(model_config, "serving_server_conf.prototxt")):
        raise ConfigError(
            f"{path}: op.{OP_NAME}.local_service_conf.model_config={model_config} is not a "
            "converted model (no serving_server_conf.prototxt; run deploy/serving/convert.py)"
        )
    service["model_config"] = model_config
    processing[MODEL_KEY] = model
    for key in ("http_port", "rpc_port"):
        if not isinstance(conf.get(key), int):
            raise ConfigError(f"{path}: {key} must be a port number")
    return conf, processing


def check_ports_free(conf):
    """Raise :class:`ConfigError` if ``http_port`` or ``rpc_port`` is taken on 127.0.0.1."""
    for key in ("http_port", "rpc_port"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            if sock.connect_ex(("127.0.0.1", conf[key])) == 0:
                raise ConfigError(f"{key} {conf[key]} is already in use (another service is listening)")
    if conf["http_port"] == conf["rpc_port"]:
        raise ConfigError(f"http_port and rpc_port are both {conf['http_port']}")


# --------------------------------------------------------------- conversion


_DTYPE_CODES = {"int64": 0, "float32": 1, "int32": 2, "float64": 3, "int16": 4,
                "float16": 5, "bfloat16": 6, "uint8": 7, "int8": 8, "bool": 9}


def _dtype_code(var):
    name = str(var.dtype).split(".")[-1].lower()
    aliases = {"fp32": "float32", "fp64": "float64", "fp16": "float16", "bf16": "bfloat16"}
    name = aliases.get(name, name)
    if name not in _DTYPE_CODES:
        raise ConversionError(f"variable {var.name} has an unsupported type {var.dtype}")
    return _DTYPE_CODES[name]


def _var_entry(entry, var):
    entry.alias_name = var.name
    entry.name = var.name
    entry.is_lod_tensor = bool(getattr(var, "lod_level", 0))
    # Unknown (-1) dimensions are left out, as Paddle Serving's own converter does.
    entry.shape.extend([-1] if entry.is_lod_tensor else [int(d) for d in var.shape if d >= 0])


def _default_file(dirname, suffix, given):
    if given:
        return given
    found = sorted(n for n in os.listdir(dirname) if n.endswith(suffix))
    if not found and suffix == ".pdmodel" and any(n.endswith(".json") for n in os.listdir(dirname)):
        raise UserError(f"{dirname} has only a Paddle 3 .json program; Paddle Serving 0.9 reads the "
                        "legacy .pdmodel: export with legacy_format=True (tools/export_model.py writes it)")
    if len(found) != 1:
        hint = "none" if not found else ", ".join(found)
        raise UserError(f"{dirname}: expected one *{suffix} file, found {hint}; name it with the "
                        f"{'--model_filename' if suffix == '.pdmodel' else '--params_filename'} flag")
    return found[0]


def model_files(dirname, model_filename=None, params_filename=None):
    """``(program, parameters)`` file names of the exported model in ``dirname``.

    Defaults to the folder's only ``*.pdmodel`` / ``*.pdiparams``; raises
    :class:`UserError` for a missing folder or file and for a Paddle 3
    ``.json``-only export, which Paddle Serving cannot read.
    """
    if not os.path.isdir(dirname):
        raise UserError(f"model folder not found: {dirname}")
    model_filename = _default_file(dirname, ".pdmodel", model_filename)
    if model_filename.endswith(".json"):
        raise UserError(f"{model_filename}: Paddle Serving 0.9 reads only the legacy .pdmodel program; "
                        "export with legacy_format=True (tools/export_model.py writes it)")
    params_filename = _default_file(dirname, ".pdiparams", params_filename)
    for name in (model_filename, params_filename):
        if not os.path.isfile(os.path.join(dirname, name)):
            raise UserError(f"not found: {os.path.join(dirname, name)}")
    return model_filename, params_filename


def convert_to_serving(dirname, serving_server="serving_server", serving_client="serving_client",
                       model_filename=None, params_filename=None):
    """Turn an exported inference model into Paddle Serving's model folders.

    ``serving_server`` gets the program and parameters (copied unchanged) with
    ``serving_server_conf.prototxt`` / ``.stream.prototxt``; ``serving_client``
    gets the ``serving_client_conf`` pair. The program must be the legacy
    ``.pdmodel`` (``export_inference_model(..., legacy_format=True)``): Paddle
    Serving 0.9's ``LocalPredictor`` does not read Paddle 3's ``.json``.
    Each folder appears complete or not at all. Returns their paths.
    """
    model_filename, params_filename = model_files(dirname, model_filename, params_filename)
    try:
        import paddle
        from paddle_serving_client.proto import general_model_config_pb2 as model_conf
    except ImportError as err:
        raise MissingDependencyError(
            f"model conversion needs paddle and paddle_serving_client ({err}); "
            "run it with the serving environment (bash deploy/serving/setup_env.sh)"
        ) from None

    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    stem = model_filename[:-len(".pdmodel")] if model_filename.endswith(".pdmodel") else None
    try:
        if stem and params_filename == stem + ".pdiparams":
            program, feed_names, fetch_vars = paddle.static.load_inference_model(
                os.path.join(dirname, stem), exe)
        else:  # files named apart: the older (deprecated) way to name them
            program, feed_names, fetch_vars = paddle.static.load_inference_model(
                dirname, exe, model_filename=model_filename, params_filename=params_filename)
    except Exception as err:  # Paddle raises many kinds; any means "not loadable here"
        raise ConversionError(f"cannot load {os.path.join(dirname, model_filename)} with paddle "
                              f"{paddle.__version__}: {str(err).strip().splitlines()[-1][:300]}") from None
    block = program.global_block()
    config = model_conf.GeneralModelConfig()
    for name in feed_names:
        var = block.var(name)
        entry = model_conf.FeedVar()
        _var_entry(entry, var)
        entry.feed_type = _dtype_code(var)
        config.feed_var.extend([entry])
    for var in fetch_vars:
        entry = model_conf.FetchVar()
        _var_entry(entry, var)
        entry.fetch_type = _dtype_code(var)
        config.fetch_var.extend([entry])

    outputs = []
    for target, prefix, copy in ((serving_server, "serving_server", True),
                                 (serving_client, "serving_client", False)):
        target = os.path.abspath(target)
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=".convert-")
        try:
            if copy:
                shutil.copyfile(os.path.join(dirname, model_filename), os.path.join(tmp, model_filename))
                shutil.copyfile(os.path.join(dirname, params_filename), os.path.join(tmp, params_filename))
            with open(os.path.join(tmp, prefix + "_conf.prototxt"), "w") as f:
                f.write(str(config))
            with open(os.path.join(tmp, prefix + "_conf.stream.prototxt"), "wb") as f:
                f.write(config.SerializeToString())
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp)
        outputs.append(target)
    return outputs[0], outputs[1]

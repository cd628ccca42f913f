"""The authors' trained networks by name: ``mirnet_sidd``, ``mirnetv2_realsr_x4``, ...

    ppmirnet models                       # name, network, task, config, source, cached
    ppmirnet download mirnetv2_sidd       # or: all
    ppmirnet predict --model mirnetv2_sidd --input photo.jpg --output out/
    Restorer.from_pretrained("mirnetv2_sidd")

A name is the name of its config (``configs/<name>.yaml``, the training and
evaluation settings of the task). The first use downloads the official
PyTorch checkpoint into the cache (:mod:`ppmirnet.download`), reads it
without PyTorch (:mod:`ppmirnet.safe_pickle`) and caches the converted
``<name>.pdparams`` beside it. The network is built from the checkpoint
itself: its family and sizes are read off the tensors' names and shapes
(:func:`ppmirnet.convert.infer_network`), so a mirror may serve any
checkpoint of the family under the official file name (a fine-tuned or a
smaller network) and it runs as what it is.

The sources are the authors' addresses from the official READMEs
(swz30/MIRNet: Google Drive; swz30/MIRNetv2: the v1.0.0 release files).
They were not reachable from the machines this project is built and tested
on; the tests serve small checkpoints under the official file names through
``PPMIRNET_DOWNLOAD_MIRROR``.
"""

import collections
import difflib
import os

from .errors import UserError

_MIRNET_DRIVE = "https://drive.google.com/file/d/{}/view"
_MIRNET_SR_FOLDER = "https://drive.google.com/drive/folders/1yMtXbk6RXoFfmeRRGu1XfNFSHH6bSUoR"
_MIRNETV2_RELEASE = "https://github.com/swz30/MIRNetv2/releases/download/v1.0.0/{}"

ZooModel = collections.namedtuple("ZooModel", "name network task file source")


def _drive_file(file_id):
    return {"url": _MIRNET_DRIVE.format(file_id), "gdrive": True, "id": file_id}


def _drive_folder(url):
    return {"url": url, "gdrive": True}


def _release(filename):
    return {"url": _MIRNETV2_RELEASE.format(filename)}


MODELS = collections.OrderedDict((m.name, m) for m in (
    ZooModel("mirnet_sidd", "MIRNet", "real denoising (SIDD)", "model_denoising.pth",
             _drive_file("13PGkg3yaFQCvz6ytN99Heh_yyvfxRCdG")),
    ZooModel("mirnet_realsr_x3", "MIRNet", "super-resolution x3 (RealSR)", "model_SR_x3.pth",
             _drive_folder(_MIRNET_SR_FOLDER)),
    ZooModel("mirnet_realsr_x4", "MIRNet", "super-resolution x4 (RealSR)", "model_SR_x4.pth",
             _drive_folder(_MIRNET_SR_FOLDER)),
    ZooModel("mirnet_lol", "MIRNet", "low-light enhancement (LOL)", "model_lol.pth",
             _drive_file("1t_FcBuMZD5th2KWVVNXYGJ7bMz5ZAWvF")),
    ZooModel("mirnet_fivek", "MIRNet", "enhancement (MIT-Adobe FiveK)", "model_fivek.pth",
             _drive_file("1BsXOvhMz2z80E_V93dgD6QaEspZE0w-u")),
    ZooModel("mirnetv2_sidd", "MIRNet-v2", "real denoising (SIDD)", "real_denoising.pth",
             _release("real_denoising.pth")),
    ZooModel("mirnetv2_realsr_x2", "MIRNet-v2", "super-resolution x2 (RealSR)", "sr_x2.pth",
             _release("sr_x2.pth")),
    ZooModel("mirnetv2_realsr_x3", "MIRNet-v2", "super-resolution x3 (RealSR)", "sr_x3.pth",
             _release("sr_x3.pth")),
    ZooModel("mirnetv2_realsr_x4", "MIRNet-v2", "super-resolution x4 (RealSR)", "sr_x4.pth",
             _release("sr_x4.pth")),
    ZooModel("mirnetv2_lol", "MIRNet-v2", "low-light enhancement (LOL)", "enhancement_lol.pth",
             _release("enhancement_lol.pth")),
    ZooModel("mirnetv2_fivek", "MIRNet-v2", "enhancement (MIT-Adobe FiveK)", "enhancement_fivek.pth",
             _release("enhancement_fivek.pth")),
    ZooModel("mirnetv2_dpdd", "MIRNet-v2", "dual-pixel defocus deblurring (DPDD)",
             "dual_pixel_defocus_deblurring.pth", _release("dual_pixel_defocus_deblurring.pth")),
))


def get(name):
    """The :data:`MODELS` entry ``name``; an unknown name is a one-line error with the close ones."""
    if name in MODELS:
        return MODELS[name]
    close = difflib.get_close_matches(name, list(MODELS), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"unknown model {name!r}: {hint}ppmirnet models lists all {len(MODELS)}")


def config_path(name):
    """``configs/<name>.yaml`` of this checkout (the task's settings), or None if absent."""
    from .config import REPO_ROOT

    path = os.path.join(REPO_ROOT, "configs", f"{get(name).name}.yaml")
    return path if os.path.isfile(path) else None


def files(name):
    """``(official checkpoint, converted .pdparams)`` paths of ``name`` in the cache."""
    from .download import weights_dir

    model = get(name)
    return (os.path.join(weights_dir(), model.file),
            os.path.join(weights_dir(), f"{model.name}.pdparams"))


def cached(name):
    """``"yes"`` (converted weights cached), ``"download only"`` or ``"no"``; files are not hashed."""
    original, converted = files(name)
    if os.path.isfile(converted):
        return "yes"
    return "download only" if os.path.isfile(original) else "no"


def source_of(name):
    """Where ``name`` is downloaded from now (the mirror when one is set)."""
    from .download import mirror_url

    return mirror_url(get(name).file) or get(name).source["url"]


def again(name):
    return f"ppmirnet download {name} --force"


def resolve(name, force=False, log=None):
    """The converted ``.pdparams`` of ``name``: downloaded, verified and converted as needed.

    The official file is checked against its size/SHA-256 record on every
    call; the converted weights are remade when missing, when they fail
    their own record, or when they were made from another official file.
    """
    from .convert import convert_checkpoint
    from .download import fetch, read_record, verify, write_record

    model = get(name)
    original, converted = files(name)
    # fetch verifies the file against its record.
    digest = read_record(fetch(model.file, model.source, force=force, again=again(name),
                               log=log))["sha256"]
    if os.path.isfile(converted) and not force:
        record = read_record(converted)
        if record is not None and record.get("converted_from") == digest:
            verify(converted, again(name))
            return converted
    if log:
        log(f"converting {original} -> {converted}")
    convert_checkpoint(original, converted)
    write_record(converted, original, converted_from=digest)
    return converted


def table():
    """The rows of ``ppmirnet models``: name, network, task, config, source, cached."""
    from .config import REPO_ROOT

    rows = []
    for name, model in MODELS.items():
        config = config_path(name)
        rows.append((name, model.network, model.task,
                     os.path.relpath(config, REPO_ROOT) if config else "-",
                     source_of(name), cached(name)))
    return rows

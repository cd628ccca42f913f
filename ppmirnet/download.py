"""Downloads into the weights cache: resumable, verified, replaceable by a mirror.

The cache is ``~/.cache/ppmirnet/weights`` (``PPMIRNET_HOME`` moves
``~/.cache/ppmirnet``). A download goes to ``<file>.part`` and is renamed to
``<file>`` only once complete, so a partial file is never taken for a whole
one; an interrupted download keeps its ``.part`` and the next attempt asks
the server for the rest (an HTTP ``Range`` request). The first time a file is
in the cache its size and SHA-256 are written beside it (``<file>.sha256``)
and every later use checks them, so a file changed or damaged on disk is
named instead of loaded.

``PPMIRNET_DOWNLOAD_MIRROR`` (an ``http(s)://`` base URL, or a local folder)
replaces every official source: ``<mirror>/<official file name>``. Google
Drive sources go through ``gdown``. A download that fails (offline, refused,
not found) is one :class:`~ppmirnet.errors.UserError` line naming the URL,
the file to fetch by hand and where to put it.
"""

import hashlib
import json
import os
import shutil
import sys
import urllib.error
import urllib.request

from .errors import MissingDependencyError, UserError
from .utils.io import atomic_path, ensure_dir

HOME_ENV = "PPMIRNET_HOME"
MIRROR_ENV = "PPMIRNET_DOWNLOAD_MIRROR"
_CHUNK = 1 << 20
_ATTEMPTS = 3  # an interrupted transfer is resumed this many times in one call
_TIMEOUT_S = 60


def home():
    """The folder of everything ppmirnet keeps between runs (``$PPMIRNET_HOME``, default ~/.cache/ppmirnet)."""
    return os.path.abspath(os.path.expanduser(
        os.environ.get(HOME_ENV) or os.path.join("~", ".cache", "ppmirnet")))


def weights_dir():
    """Where downloaded and converted weights are cached."""
    return os.path.join(home(), "weights")


def mirror_url(filename):
    """The mirror's address of ``filename`` (URL or local path), or None without a mirror."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return None
    if mirror.startswith(("http://", "https://")):
        return mirror.rstrip("/") + "/" + filename
    if "://" in mirror:
        raise UserError(f"{MIRROR_ENV}={mirror} is neither an http(s):// URL nor a folder")
    if not os.path.isdir(mirror):
        raise UserError(f"{MIRROR_ENV}={mirror} is not a folder (give an http(s):// URL or a "
                        f"folder holding the official files)")
    return os.path.join(os.path.abspath(mirror), filename)


# -- the size and SHA-256 record -------------------------------------------------------------

def record_path(path):
    return path + ".sha256"


def file_digest(path):
    """``(size in bytes, SHA-256 hex)`` of ``path``."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            sha.update(block)
            size += len(block)
    return size, sha.hexdigest()


def write_record(path, source, **extra):
    """Record ``path``'s size and SHA-256 (and where it came from) beside it."""
    size, digest = file_digest(path)
    record = {"file": os.path.basename(path), "size": size, "sha256": digest, "source": source,
              **extra}
    with atomic_path(record_path(path)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
    return record


def read_record(path):
    """The record of ``path``, or None when there is none (or it is unreadable)."""
    try:
        with open(record_path(path), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "sha256" in record else None


def verify(path, again):
    """Check ``path`` against its record; a mismatch is a :class:`UserError` saying ``again``.

    Returns the record.
    """
    record = read_record(path)
    if record is None:
        raise UserError(f"{path} has no size/SHA-256 record ({record_path(path)}); "
                        f"fetch it again with: {again}")
    size, digest = file_digest(path)
    if size != record.get("size") or digest != record["sha256"]:
        what = (f"{size} bytes instead of {record.get('size')}" if size != record.get("size")
                else f"SHA-256 {digest[:12]}... instead of {record['sha256'][:12]}...")
        raise UserError(f"{path} does not match the record of its download ({what}): it was "
                        f"changed or damaged; fetch it again with: {again}")
    return record


# -- fetching ------------------------------------------------------------------------------

def _by_hand(url, dest, reason):
    return UserError(f"cannot download {url} ({reason}): fetch {os.path.basename(dest)} by hand "
                     f"from that address and put it at {dest}, or set {MIRROR_ENV} to a folder "
                     f"or server that holds it")


def _reason(err):
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        err = err.reason
    # gdown explains itself in paragraphs: the message stays one line.
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _progress(total, initial, name):
    from tqdm import tqdm

    # tqdm shows nothing when stderr is not a terminal (disable=None).
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name, disable=None, file=sys.stderr, leave=False)


def _http_attempt(url, part, name):
    """One request for the rest of ``part``; returns True once the whole file is there."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "ppmirnet"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the part is the whole file
            return True
        raise
    with response:
        if have and not (response.status == 206 and response.headers.get(
                "Content-Range", "").startswith(f"bytes {have}-")):
            have = 0  # the server ignores Range (or answers another one): start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as f, _progress(total, have, name) as bar:
            while True:
                block = response.read(_CHUNK)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
    got = os.path.getsize(part)
    return total is None or got == total


def _fetch_http(url, part, dest):
    last = None
    for _ in range(_ATTEMPTS):
        try:
            if _http_attempt(url, part, os.path.basename(dest)):
                return
            last = "the connection closed early"
        except urllib.error.HTTPError as err:
            raise _by_hand(url, dest, _reason(err)) from None
        except (urllib.error.URLError, OSError) as err:  # includes timeouts, resets, IncompleteRead
            last = _reason(err)
        except Exception as err:  # http.client.IncompleteRead and kin
            last = _reason(err)
    kept = os.path.getsize(part) if os.path.exists(part) else 0
    reason = last + (f"; {kept} bytes kept in {part}, the next run resumes" if kept else "")
    raise _by_hand(url, dest, reason)


def _fetch_local(src, part, dest):
    if not os.path.isfile(src):
        raise _by_hand(src, dest, "no such file in the mirror folder")
    shutil.copyfile(src, part)


def _gdown():
    try:
        import gdown
    except ImportError:
        raise MissingDependencyError("downloading from Google Drive needs gdown: pip install gdown") \
            from None
    return gdown


def _fetch_gdrive(source, part, dest):
    gdown = _gdown()
    name = os.path.basename(dest)
    try:
        file_id = source.get("id")
        if file_id is None:
            listing = gdown.download_folder(url=source["url"], skip_download=True, quiet=True)
            matches = [f for f in (listing or []) if os.path.basename(f.path) == name]
            if not matches:
                raise _by_hand(source["url"], dest, f"{name} is not in that folder")
            file_id = matches[0].id
        out = gdown.download(id=file_id, output=part, quiet=False, resume=True)
    except UserError:
        raise
    except Exception as err:  # gdown and requests raise many types when offline or refused
        raise _by_hand(source["url"], dest, _reason(err)) from None
    if not out or not os.path.isfile(part):
        raise _by_hand(source["url"], dest, "Google Drive gave no file")


def fetch(filename, source, folder=None, force=False, again=None, log=None):
    """The verified local copy of ``filename``, downloaded into ``folder`` if needed.

    Args:
        filename (str): the file's name, also its name in a mirror.
        source (dict): where to get it without a mirror: ``{"url": ...}``
            (http/https), or a Google Drive ``{"url": ..., "gdrive": True}``
            with ``"id"`` for a file (else ``url`` is a folder holding
            ``filename``).
        folder (str): cache folder (default :func:`weights_dir`).
        force (bool): download again even when a verified copy is there.
        again (str): the command that fetches it again, for error messages.
        log (callable): one-line messages.

    Returns:
        str: the path of the file, whose size and SHA-256 match its record.
    """
    log = log or (lambda message: None)
    folder = folder or weights_dir()
    dest = os.path.join(folder, filename)
    again = again or f"delete {dest} and run again"
    if os.path.exists(dest) and not force:
        if read_record(dest) is None:  # placed by hand: trusted as it is from now on
            write_record(dest, "placed by hand")
        verify(dest, again)
        return dest
    ensure_dir(folder)
    part = dest + ".part"
    if force and os.path.exists(part):
        os.remove(part)
    mirrored = mirror_url(filename)
    url = mirrored or source["url"]
    log(f"downloading {url} -> {dest}")
    if mirrored is not None and "://" not in mirrored:
        _fetch_local(mirrored, part, dest)
    elif mirrored is None and source.get("gdrive"):
        _fetch_gdrive(source, part, dest)
    else:
        _fetch_http(url, part, dest)
    os.replace(part, dest)
    write_record(dest, url)
    return dest

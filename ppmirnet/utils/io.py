"""Atomic writes: a file is either complete or absent, never half-written."""

import contextlib
import errno
import os
import tempfile

from ..errors import UserError


# Errors of writing a file that are the user's to fix (a path, a disk).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.EFBIG, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}


def _write_error(path, err):
    return UserError(f"cannot write {path}: {err.strerror or err}")


def check_output_dir(path, what="output folder"):
    """Check that ``path`` can be created or written as a folder, without creating it.

    A file in its place or above it, or a read-only parent, is a
    :class:`UserError` naming it, raised before any work is done.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{what} {path} exists and is not a folder")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{what} {path} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be created or written: {existing} is read-only")


def ensure_dir(path):
    """``os.makedirs(path, exist_ok=True)`` with failures as a :class:`UserError` naming it."""
    if os.path.isdir(path):
        return
    check_output_dir(path, "folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        if os.path.exists(path) and not os.path.isdir(path):
            raise UserError(f"cannot create folder {path}: a file has that name") from None
        raise UserError(f"cannot create folder {path}: {err.strerror or err}") from None


@contextlib.contextmanager
def atomic_path(path, shown=None):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On an exception (or a kill before the rename) ``path`` keeps its previous
    content and the temporary file is removed. A write that fails for a
    reason the user can fix (full disk, read-only or wrong path) is a
    :class:`UserError` naming ``path`` (or ``shown``: the file the user knows,
    when ``path`` is itself a staging name).
    """
    shown = shown or path
    directory = os.path.dirname(os.path.abspath(path))
    ensure_dir(directory)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    except OSError as err:
        raise _write_error(shown, err) from None
    os.close(fd)
    try:
        try:
            yield tmp
            # mkstemp creates the file owner-only; give it the mode a plain open() would.
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except OSError as err:
            if err.errno in _WRITE_ERRNOS:
                raise _write_error(shown, err) from None
            raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; rename it to ``path`` when the block succeeds.

    For a folder of files that are only usable together (an export). On an
    exception the temporary folder is removed and ``path`` is untouched; a
    kill leaves only a ``.tmp-`` folder beside it, never a partial
    ``path``. If another process completed ``path`` first, that one is kept.
    """
    import shutil

    parent = os.path.dirname(os.path.abspath(path))
    ensure_dir(parent)
    try:
        tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-" + os.path.basename(path) + "-")
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError:
            if not os.path.isdir(path):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_paddle_save(obj, path):
    """``paddle.save`` through :func:`atomic_path`."""
    import paddle

    with atomic_path(path) as tmp:
        paddle.save(obj, tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask

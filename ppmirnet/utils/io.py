"""Atomic writes: a file is either complete or absent, never half-written."""

import contextlib
import errno
import os
import shutil
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
            # Some file systems report a full disk only when the data is flushed.
            _fsync(tmp)
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
def atomic_folder(folder, check=None):
    """Yield an empty staging folder whose files then appear in ``folder`` as one set.

    The staging folder is made beside ``folder`` (same parent, so the same
    file system). When the block ends, ``check(staging folder)`` (if given)
    verifies what was written (it raises :class:`UserError` naming a file
    that is incomplete: writers in native code, such as Paddle's, may leave
    a file cut short by a full disk without any error); every file is
    flushed to disk; then, if ``folder`` is absent or empty, the staging
    folder is renamed to it in one step, otherwise its files are moved in
    (each move atomic; the staging folder is inside ``folder`` when only that
    is writable). On any failure nothing of the set appears and the
    staging folder is removed; a write failure the user can fix (full disk,
    no permission) is a :class:`UserError` naming the file.
    """
    folder = os.path.abspath(folder)
    parent = os.path.dirname(folder)
    ensure_dir(parent)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f"output folder {folder} exists and is not a folder")
    try:
        staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(folder)}.staging-")
    except OSError as err:
        if not os.path.isdir(folder):
            raise _write_error(folder, err) from None
        try:  # a folder writable under a read-only parent: stage inside it
            staging = tempfile.mkdtemp(dir=folder, prefix=".staging-")
        except OSError as err:
            raise _write_error(folder, err) from None
    try:
        try:
            yield staging
            if check is not None:
                check(staging)
            names = sorted(os.listdir(staging))
            for name in names:
                _fsync(os.path.join(staging, name))
            os.chmod(staging, 0o777 & ~_umask())
            inside = os.path.dirname(staging) == folder
            if not inside and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
            if not inside and not os.path.exists(folder):
                os.rename(staging, folder)
            else:
                for name in names:
                    os.replace(os.path.join(staging, name), os.path.join(folder, name))
        except OSError as err:
            if err.errno in _WRITE_ERRNOS:
                where = err.filename if isinstance(err.filename, str) else folder
                if where.startswith(staging):
                    where = os.path.join(folder, os.path.relpath(where, staging))
                raise _write_error(where, err) from None
            raise
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_paddle_save(obj, path):
    """``paddle.save`` through :func:`atomic_path`."""
    import paddle

    with atomic_path(path) as tmp:
        paddle.save(obj, tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask

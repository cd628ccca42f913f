"""Atomic writes: a file is either complete or absent, never half-written."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On an exception (or a kill before the rename) ``path`` keeps its previous
    content and the temporary file is removed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        # mkstemp creates the file owner-only; give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_paddle_save(obj, path):
    """``paddle.save`` through :func:`atomic_path`."""
    import paddle

    with atomic_path(path) as tmp:
        paddle.save(obj, tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask

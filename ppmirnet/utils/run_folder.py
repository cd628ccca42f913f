"""Output folders of runs: one training per folder (a lock), earlier results archived, never replaced.

A training holds :data:`LOCK_NAME` in its output folder (:class:`RunLock`):
a JSON record of the process holding it (pid, host, start time, command).
It is released on any exit of the process that can run code (normal end,
error, SIGINT/SIGTERM); one left by a killed run (its pid no longer runs on
this host) is taken over. A second training on the folder stops before any
work, naming the folder and the run holding it.

A new run whose outputs would replace those of an earlier run moves the
earlier results aside first (:func:`archive_earlier`): what the folder
holds moves to ``<folder>_archived_<time>``, said in one line. Nothing written by an
earlier run is overwritten or deleted.
"""

import datetime
import json
import os
import socket
import sys
import time

from ..errors import UserError
from .io import ensure_dir

LOCK_NAME = ".ppmirnet.lock"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a process of another user
    except OSError:
        return False
    return True


def describe_holder(record):
    """``pid 123 on host, started 2026-01-02 03:04:05: <command>`` of a lock record."""
    started = record.get("started")
    when = (datetime.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(started, (int, float)) else "at an unknown time")
    return (f"pid {record.get('pid', '?')} on {record.get('host', '?')}, started {when}: "
            f"{record.get('command', '?')}")


class RunLock:
    """The lock of one run on ``folder``; :meth:`acquire`, :meth:`release` (also a context manager).

    Acquiring writes the record to a temporary file and links it to
    :data:`LOCK_NAME`, which fails when the name exists: of two runs starting
    at once exactly one gets the lock, and a lock file is always complete.
    """

    def __init__(self, folder, command=None):
        self.folder = os.path.abspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.command = command or " ".join([os.path.basename(sys.executable)] + sys.argv)
        self.held = False
        self.created = False

    def read(self):
        """The record of the lock file, ``{}`` if it is unreadable, None if there is none."""
        try:
            with open(self.path, encoding="utf-8") as f:
                record = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _stale(self, record):
        """Whether the holder of ``record`` has ended (a run killed without releasing)."""
        if record.get("host") != socket.gethostname():
            return False  # another machine: its processes cannot be seen from here
        pid = record.get("pid")
        return not isinstance(pid, int) or pid == os.getpid() or not _pid_alive(pid)

    def acquire(self):
        self.created = not os.path.isdir(self.folder)
        ensure_dir(self.folder)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                  "command": self.command}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f)
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                    self.held = True
                    return self
                except FileExistsError:
                    pass
                holder = self.read()
                if holder is None:
                    continue  # released meanwhile
                if holder and self._stale(holder):
                    try:
                        os.remove(self.path)
                    except FileNotFoundError:
                        pass
                    continue
                who = describe_holder(holder) if holder else "a run whose lock file is unreadable"
                raise UserError(
                    f"{self.folder} is in use by another training ({who}); wait for it to end, "
                    f"or give another Global.output_dir (if that run is gone, delete {self.path})")
            raise UserError(f"cannot lock {self.folder}: its lock file {self.path} keeps changing")
        except OSError as err:
            raise UserError(f"cannot write {self.path}: {err.strerror or err}") from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def release(self):
        """Remove the lock file if this run still holds it (idempotent)."""
        if not self.held:
            return
        self.held = False
        record = self.read()
        if record and record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
            try:
                os.remove(self.path)
                if self.created and not os.listdir(self.folder):
                    os.rmdir(self.folder)  # a run that could not start leaves no folder
            except OSError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def archive_name(folder, now=None):
    """``<folder>_archived_<YYYYmmdd_HHMMSS>`` (a counter added if that exists too)."""
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d_%H%M%S")
    base = f"{os.path.abspath(folder).rstrip(os.sep)}_archived_{stamp}"
    name, n = base, 1
    while os.path.exists(name):
        n += 1
        name = f"{base}_{n}"
    return name


def archive_earlier(folder, names, log=print, keep=()):
    """Move what ``folder`` holds to ``<folder>_archived_<time>`` if it holds any of ``names``.

    ``names``: files (relative to ``folder``) an earlier run of the command
    wrote and the new run would replace. Paths in ``keep`` (inputs of the
    new run) must not be inside the folder: the run is refused instead, with
    the way out. Returns the archive's path, or None when nothing was there.
    """
    folder = os.path.abspath(folder)
    found = [n for n in names if os.path.lexists(os.path.join(folder, n))]
    if not found:
        return None
    cwd = os.path.abspath(os.getcwd())
    inside = [p for p in keep if p and os.path.commonpath(
        [os.path.abspath(p), folder]) == folder]
    if inside or os.path.commonpath([cwd, folder]) == folder:
        what = inside[0] if inside else "the working directory"
        raise UserError(f"{folder} holds results of an earlier run ({found[0]}), which this run "
                        f"would replace, and cannot be archived because it holds {what}; give "
                        f"another output folder")
    target = archive_name(folder)
    try:
        # Entry by entry, so that a lock held in the folder stays where it is.
        os.mkdir(target)
        for name in sorted(os.listdir(folder)):
            if name != LOCK_NAME:
                os.rename(os.path.join(folder, name), os.path.join(target, name))
    except OSError as err:
        raise UserError(f"cannot archive the earlier results in {folder} to {target}: "
                        f"{err.strerror or err}; give another output folder") from None
    log(f"{folder} held an earlier run's results ({found[0]}): moved to {target}")
    return target


def archive_file(path, log=print):
    """Move the file ``path`` aside to ``<stem>_archived_<time><ext>`` if it exists; returns that path."""
    if not os.path.lexists(path):
        return None
    stem, ext = os.path.splitext(os.path.abspath(path))
    target = archive_name(stem) + ext
    try:
        os.rename(path, target)
    except OSError as err:
        raise UserError(f"cannot archive the earlier {path} to {target}: {err.strerror or err}") from None
    log(f"{path} held an earlier result: moved to {target}")
    return target

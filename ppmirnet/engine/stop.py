"""Stopping a training run on SIGINT (Ctrl-C) or SIGTERM (job schedulers) between steps.

The first signal only raises a flag: the loop finishes the step in progress,
saves ``latest`` and ends with :class:`Interrupted`. A second signal stops at
once (``KeyboardInterrupt``); checkpoints are written atomically, so the last
complete one survives either way.
"""

import signal
import threading

from ..errors import UserError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(UserError):
    """The run was stopped by a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopFlag:
    """Context manager catching SIGINT/SIGTERM while it is active (main thread only)."""

    def __init__(self):
        self.signum = None
        self.immediate = False  # raise KeyboardInterrupt on the first signal too
        self._previous = {}

    def _handle(self, signum, frame):
        first = self.signum is None
        if first:
            self.signum = signum
        if self.immediate or not first:
            raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        return False

    @property
    def name(self):
        return signal.Signals(self.signum).name if self.signum else None

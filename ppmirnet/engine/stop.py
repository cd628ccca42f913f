"""Stopping a training run on SIGINT (Ctrl-C) or SIGTERM (job schedulers) between steps.

The first signal only raises a flag: the loop finishes the step in progress,
saves ``latest`` and ends with :class:`Interrupted`. A second signal stops at
once (``KeyboardInterrupt``); checkpoints are written atomically, so the last
complete one survives either way.
"""

import signal
import threading
import time

from ..errors import UserError

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# paddle.distributed.launch forwards a stop as SIGTERM to each rank, again
# every 0.2 s while the rank lives: repeats that close are one request, not a
# user insisting.
REPEAT_WINDOW_S = 1.0


class Interrupted(UserError):
    """The run was stopped by a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


def signal_name(signum):
    return signal.Signals(signum).name


class StopFlag:
    """Context manager catching SIGINT/SIGTERM while it is active (main thread only).

    ``immediate``: raise ``KeyboardInterrupt`` on the first signal too (while
    there is nothing to finish or save); ``signum`` still says which signal.
    """

    def __init__(self, immediate=False):
        self.signum = None
        self.immediate = immediate
        self._first_at = None
        self._previous = {}

    def _handle(self, signum, frame):
        now = time.monotonic()
        if self.signum is None:
            self.signum, self._first_at = signum, now
            if self.immediate:
                raise KeyboardInterrupt
        elif self.immediate or now - self._first_at > REPEAT_WINDOW_S:
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
        return signal_name(self.signum) if self.signum else None

"""A data loader that ends the run when a sample cannot be loaded, instead of hanging.

Paddle's ``DataLoader`` reads samples in a thread (``num_workers: 0``) or in
worker processes; an exception raised there is printed from the thread and the
main loop waits forever for a batch that never comes. Here every sample is
loaded under a guard: a failure travels to the main process as a batch of
its own (the message, encoded), and iterating the loader raises it there, in
the training or evaluation loop, where it ends the run like any other error.
"""

import signal
import traceback

import numpy as np
import paddle

from ..errors import UserError

# First byte of a failure batch: what kind of error to raise in the main process.
_USER, _BUG = 85, 66  # "U", "B"


class _Failure:
    def __init__(self, kind, message):
        self.kind = kind
        self.message = message


class _GuardedDataset(paddle.io.Dataset):
    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        try:
            return self.dataset[key]
        except UserError as err:
            return _Failure(_USER, str(err))
        except Exception:  # a bug: keep its traceback for the report
            return _Failure(_BUG, traceback.format_exc())


def _worker_init(worker_id):
    # Ctrl-C, and the SIGTERM of job schedulers, reach the whole process
    # group; a worker killed by it would abort the step in progress. The main
    # process stops the run between steps, then shuts its workers down.
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


def _collate(samples):
    for s in samples:
        if isinstance(s, _Failure):
            data = bytes([s.kind]) + s.message.encode("utf-8", "replace")
            return [np.frombuffer(data, dtype=np.uint8).copy()]
    return paddle.io.dataloader.collate.default_collate_fn(samples)


class SampleError(UserError):
    """A sample of a dataset could not be loaded (file named in the message)."""


class WorkerDied(UserError):
    """A data loading worker process ended (killed by a signal or out of memory)."""


class GuardedLoader:
    """``paddle.io.DataLoader`` over ``dataset`` that raises a sample's error in the caller.

    A :class:`UserError` raised while loading a sample (unreadable file, pair
    of different sizes, image smaller than the patch) is raised again by the
    iteration as :class:`SampleError`, with its message; any other exception
    becomes a ``RuntimeError`` carrying the worker's traceback.
    """

    def __init__(self, dataset, batch_sampler, num_workers=0, use_shared_memory=True):
        self.dataset = dataset
        self.batch_sampler = batch_sampler
        self._loader = paddle.io.DataLoader(
            _GuardedDataset(dataset), batch_sampler=batch_sampler, num_workers=num_workers,
            use_shared_memory=use_shared_memory, collate_fn=_collate,
            worker_init_fn=_worker_init if num_workers else None)

    def __len__(self):
        return len(self._loader)

    def __iter__(self):
        it = iter(self._loader)
        try:
            while True:
                try:
                    batch = next(it)
                except StopIteration:
                    return
                except SystemError as err:
                    # Paddle's report of a worker process that died (a signal to
                    # the process group, the OOM killer).
                    raise WorkerDied(str(err).strip().splitlines()[0]) from None
                if len(batch) == 1:
                    data = np.asarray(batch[0]).astype(np.uint8).tobytes()
                    message = data[1:].decode("utf-8", "replace")
                    if data[0] == _USER:
                        raise SampleError(message)
                    raise RuntimeError("loading a sample failed:\n" + message)
                yield batch
        finally:
            # Stop the workers now, not at interpreter exit (where they are
            # terminated and joined in an order that can wait forever).
            shutdown = getattr(it, "_try_shutdown_all", None)
            if shutdown is not None:
                shutdown()

"""Training logs: one logger writing to stdout and ``train.log``, tqdm-friendly."""

import datetime
import logging
import os
import sys

from ..errors import UserError
from ..utils.io import ensure_dir

LOGGER_NAME = "ppmirnet"


class _TqdmStreamHandler(logging.StreamHandler):
    """Writes through ``tqdm.write`` so log lines do not break a progress bar."""

    def emit(self, record):
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # logging must never stop training
            self.handleError(record)


class _LogFile(logging.FileHandler):
    """``train.log``: a write that fails (full disk, read-only, no permission) ends the run.

    Python's ``FileHandler`` would print "--- Logging error ---" with a
    traceback for every line and let training go on without its log; here the
    error is raised at the log call, a :class:`UserError` naming the file.
    """

    def handleError(self, record):
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            # The handler is broken: later lines (and the flush at exit) are dropped.
            self.stream, broken = open(os.devnull, "w", encoding="utf-8"), self.stream
            try:
                broken.close()
            except OSError:
                pass  # the same error, while flushing what could not be written
            raise UserError(f"cannot write {self.baseFilename}: {err.strerror or err}") from None
        super().handleError(record)


def setup_logger(log_file=None, rank=0):
    """Configure and return the ``ppmirnet`` logger.

    Rank 0 logs INFO to stdout and, if given, to ``log_file`` (appended, so a
    resumed run continues the same file); other ranks log only warnings.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.propagate = False
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    fmt = logging.Formatter("[%(asctime)s] %(levelname)s: %(message)s", "%Y/%m/%d %H:%M:%S")
    stream = _TqdmStreamHandler(sys.stdout)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if log_file and rank == 0:
        ensure_dir(os.path.dirname(os.path.abspath(log_file)))
        try:
            fh = _LogFile(log_file, mode="a", encoding="utf-8")
        except OSError as err:
            raise UserError(f"cannot write {log_file}: {err.strerror or err}") from None
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger


def format_train_line(epoch, epochs, it, iters, loss, lr, batch_cost, reader_cost, ips, eta=None):
    """The ``[Train]`` log line parsed by TIPC's benchmark tools.

    ``eta`` (seconds left) ends the line as PaddleClas prints it: ``eta: 1:23:45``.
    """
    line = (f"[Train] epoch: {epoch}/{epochs}, iter: {it}/{iters}, loss: {loss:.5f}, "
            f"lr: {lr:.6f}, batch_cost: {batch_cost:.5f} s, reader_cost: {reader_cost:.5f} s, "
            f"ips: {ips:.2f} samples/s")
    if eta is not None:
        line += f", eta: {datetime.timedelta(seconds=int(round(eta)))}"
    return line


def format_eval_line(metrics, prefix="[Eval]"):
    """``[Eval] psnr: 30.12, ssim: 0.8765`` for the metrics present."""
    parts = []
    if metrics.get("psnr") is not None:
        parts.append(f"psnr: {metrics['psnr']:.2f}")
    if metrics.get("ssim") is not None:
        parts.append(f"ssim: {metrics['ssim']:.4f}")
    return f"{prefix} " + ", ".join(parts)

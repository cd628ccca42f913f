"""Learning-rate schedules, stepped once per training iteration."""

import math

from paddle.optimizer.lr import LRScheduler

from ..errors import ConfigError
from ..registry import build


class WarmupCosine(LRScheduler):
    """Linear warm-up, then cosine annealing to ``eta_min`` at the end of training.

    ``step()`` is called after every iteration; ``last_epoch`` counts
    iterations. With ``by_epoch=True`` the rate changes only between epochs,
    exactly as the official MIRNet schedule (GradualWarmupScheduler then
    CosineAnnealingLR, stepped per epoch): for epoch ``e`` (1-based),
    ``lr = base * e / W`` while ``e <= W``, then
    ``eta_min + (base - eta_min) * (1 + cos(pi * (e - W - 1) / (E - W))) / 2``.
    With ``by_epoch=False`` the same curve is followed per iteration.

    Args:
        learning_rate (float): peak rate ``base``.
        epochs (int): training length ``E``.
        iters_per_epoch (int): iterations in one epoch.
        warmup_epochs (float): warm-up length ``W`` (0: none).
        eta_min (float): final rate.
        by_epoch (bool): constant within an epoch.
    """

    def __init__(self, learning_rate, epochs, iters_per_epoch, warmup_epochs=0.0, eta_min=0.0,
                 by_epoch=True, last_epoch=-1):
        if warmup_epochs >= epochs:
            raise ConfigError(f"LRScheduler.warmup_epochs ({warmup_epochs}) must be smaller "
                              f"than Global.epochs ({epochs})")
        self.epochs = epochs
        self.iters_per_epoch = max(1, iters_per_epoch)
        self.warmup_epochs = warmup_epochs
        self.eta_min = eta_min
        self.by_epoch = by_epoch
        super().__init__(learning_rate, last_epoch)

    def lr_at(self, step):
        """The rate of iteration ``step`` (0-based)."""
        base, w, e_total = self.base_lr, self.warmup_epochs, self.epochs
        if self.by_epoch:
            e = step // self.iters_per_epoch + 1
            if e <= w:
                return base * e / w
            t = (e - w - 1) / (e_total - w)
        else:
            warm_iters = w * self.iters_per_epoch
            if step < warm_iters:
                return base * (step + 1) / warm_iters
            t = (step - warm_iters) / ((e_total - w) * self.iters_per_epoch)
        t = min(max(t, 0.0), 1.0)
        return self.eta_min + (base - self.eta_min) * (1.0 + math.cos(math.pi * t)) / 2.0

    def get_lr(self):
        return self.lr_at(max(self.last_epoch, 0))


class CosineAnnealingRestartCyclicLR(LRScheduler):
    """Cosine cycles, each with its own floor (BasicSR's scheduler of the same name).

    Cycle ``i`` covers iterations ``(C_{i-1}, C_i]`` with ``C_i`` the
    cumulative sum of ``periods`` (``C_{-1} = 0``); in it
    ``lr(t) = eta_min_i + w_i * (base - eta_min_i) * (1 + cos(pi * (t - C_{i-1}) / period_i)) / 2``,
    so each cycle starts at ``eta_min_i + w_i * (base - eta_min_i)`` and ends at
    ``eta_min_i``. With ``eta_min_i`` above ``base`` the cycle rises towards it.
    ``t`` is the 1-based iteration: BasicSR steps the schedule before each
    iteration, so iteration ``t`` trains with ``lr(t)``. Past the last cycle
    the last one's end value holds.

    Args:
        learning_rate (float): ``base``.
        periods (list[int]): length of each cycle in iterations.
        restart_weights (list[float]): ``w_i``.
        eta_mins (list[float]): ``eta_min_i``.
    """

    def __init__(self, learning_rate, periods, restart_weights, eta_mins, epochs=None,
                 iters_per_epoch=None, last_epoch=-1):
        # The training length (given to every schedule) is not needed: the periods say it.
        if not (len(periods) == len(restart_weights) == len(eta_mins)) or not periods:
            raise ConfigError("LRScheduler: periods, restart_weights and eta_mins must be "
                              f"non-empty lists of one length, got {len(periods)}, "
                              f"{len(restart_weights)} and {len(eta_mins)}")
        for name, values in (("periods", periods), ("restart_weights", restart_weights),
                             ("eta_mins", eta_mins)):
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values):
                raise ConfigError(f"LRScheduler.{name} must hold non-negative numbers, got {values}")
        if any(p < 1 or int(p) != p for p in periods):
            raise ConfigError(f"LRScheduler.periods must be positive integers, got {periods}")
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_mins = [float(e) for e in eta_mins]
        self.cumulative = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(learning_rate, last_epoch)

    def lr_at(self, t):
        """The rate of 1-based iteration ``t``."""
        t = min(t, self.cumulative[-1])
        i = next(k for k, c in enumerate(self.cumulative) if t <= c)
        start = self.cumulative[i - 1] if i else 0
        eta_min, w = self.eta_mins[i], self.restart_weights[i]
        return eta_min + w * 0.5 * (self.base_lr - eta_min) * (
            1.0 + math.cos(math.pi * (t - start) / self.periods[i]))

    def get_lr(self):
        # last_epoch counts finished iterations: the next one is 1-based last_epoch + 1.
        return self.lr_at(max(self.last_epoch, 0) + 1)


class Constant(LRScheduler):
    """A constant rate (kept as a scheduler so checkpoints look the same).

    Takes the training length like every schedule, and ignores it.
    """

    def __init__(self, learning_rate, epochs=None, iters_per_epoch=None, last_epoch=-1):
        super().__init__(learning_rate, last_epoch)

    def get_lr(self):
        return self.base_lr


SCHEDULERS = {"WarmupCosine": WarmupCosine, "Constant": Constant,
              "CosineAnnealingRestartCyclicLR": CosineAnnealingRestartCyclicLR}


def build_lr_scheduler(cfg, epochs, iters_per_epoch):
    """Build the schedule of the ``LRScheduler`` config section."""
    return build(SCHEDULERS, cfg, "LRScheduler", epochs=epochs, iters_per_epoch=iters_per_epoch)

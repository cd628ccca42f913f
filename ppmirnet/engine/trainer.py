"""The training loop: optimisation, logging, validation, checkpoints, resume, AMP, multi-card."""

import math
import os
import sys
import time

import numpy as np
import paddle

from .. import compat
from ..config import amp_level, save_config
from ..data.builder import build_eval_loader, build_train_loader
from ..data.transforms import mixup_params
from ..errors import UserError
from ..losses import build_loss
from ..modeling import build_model
from ..utils.run_folder import RunLock, archive_earlier
from . import checkpoint as ckpt
from . import env
from ..metrics import describe_protocol
from .evaluator import image_namer, evaluate, evaluate_model
from .logger import format_eval_line, format_train_line, setup_logger
from .lr import build_lr_scheduler
from .stop import Interrupted, StopFlag, signal_name
from .dygraph import DygraphRunner
from .visual_log import VDL_IMAGES, VisualLog, require_visualdl, save_triptychs, validation_triptychs


# With several cards, how often (in iterations) they agree on whether a signal
# asked them to stop: the all-reduce waits for the step to end on the device,
# a host sync that training otherwise makes only at log lines.
STOP_CHECK_STEPS = 5


def build_optimizer(cfg, parameters, lr):
    """Adam/AdamW of the ``Optimizer`` section (weight decay: L2 for Adam, decoupled for AdamW)."""
    args = dict(cfg)
    name = args.pop("name")
    clip = args.pop("grad_clip_norm")
    grad_clip = paddle.nn.ClipGradByGlobalNorm(clip) if clip else None
    cls = {"Adam": paddle.optimizer.Adam, "AdamW": paddle.optimizer.AdamW}[name]
    # Adam's float weight_decay is an L2 term added to the gradient, as
    # torch.optim.Adam(weight_decay=...) in the official training.
    return cls(learning_rate=lr, beta1=args["beta1"], beta2=args["beta2"],
               epsilon=args["epsilon"], weight_decay=args["weight_decay"] or None,
               parameters=parameters, grad_clip=grad_clip)


def optimize_step(model, loss_fn, optimizer, noisy, clean, amp_level=None, scaler=None,
                  any_rank=None, return_skipped=False):
    """One optimisation step: forward, loss, backward, update, gradients cleared.

    Returns the loss tensor (and, with ``return_skipped``, the bool tensor
    saying the update was skipped). ``amp_level`` ("O1"/"O2") runs the
    forward under auto-cast with the loss scaled by ``scaler``. A step whose
    loss (or, without AMP, a gradient) is not finite is skipped: the flag
    (made common to every process by ``any_rank``, a collective, not a host
    sync) is handed to the optimizer the way ``paddle.amp.GradScaler`` hands
    its own; under AMP on a GPU the scaler's flag (non-finite gradients)
    replaces it.
    """
    if amp_level:
        with paddle.amp.auto_cast(level=amp_level):
            out = model(noisy)
        loss = loss_fn(out.astype("float32"), clean)
        skipped = paddle.logical_not(paddle.isfinite(loss))
        if any_rank is not None:
            skipped = any_rank(skipped)
        compat.skip_step_if(optimizer, skipped)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss = loss_fn(model(noisy), clean)
        loss.backward()
        # A finite loss can still have non-finite gradients (an overflow in the
        # backward pass): such a step would make the weights non-finite.
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        skipped = paddle.logical_not(paddle.logical_and(paddle.isfinite(loss),
                                                        compat.all_finite(grads)))
        if any_rank is not None:
            skipped = any_rank(skipped)
        compat.skip_step_if(optimizer, skipped)
        optimizer.step()
    optimizer.clear_grad()
    return (loss, skipped) if return_skipped else loss


def mix_batch(noisy, clean, rng, mixup):
    """MixUp of a batch of tensors as the ``DataLoader.Train.mixup`` section says.

    Each sample becomes ``lam * x + (1 - lam) * x[perm]`` (input and target
    alike), ``lam ~ Beta(alpha, alpha)`` per sample, or one for the batch with
    ``one_lambda``. With ``use_identity`` a fair draw first decides whether
    the batch is mixed at all (BasicSR's ``Mixing_Augment``).
    """
    if mixup["use_identity"] and rng.integers(2) == 1:
        return noisy, clean
    perm, lam = mixup_params(noisy.shape[0], rng, mixup["alpha"], mixup["one_lambda"])
    perm, lam = paddle.to_tensor(perm), paddle.to_tensor(lam)
    return (lam * noisy + (1 - lam) * paddle.index_select(noisy, perm),
            lam * clean + (1 - lam) * paddle.index_select(clean, perm))


def progressive_stages(section):
    """``{batch_sizes, patch_sizes, ends}`` of ``DataLoader.Train.progressive``, or None if unset.

    ``ends`` are the cumulative iteration counts at which each stage ends.
    """
    if section["iters"] is None:
        return None
    ends = [sum(section["iters"][: i + 1]) for i in range(len(section["iters"]))]
    return {"batch_sizes": list(section["batch_sizes"]),
            "patch_sizes": list(section["patch_sizes"]), "ends": ends}


class _Meter:
    """Running sums between two log lines."""

    def __init__(self):
        self.reset()

    def reset(self):
        # Loss sum and count of the finite steps, kept on the device: reading
        # them (a host sync) happens once per log line, not every step.
        self.loss = paddle.zeros([], "float32")
        self.finite = paddle.zeros([], "float32")
        self.batch_cost = 0.0
        self.reader_cost = 0.0
        self.samples = 0
        self.steps = 0

    def update(self, loss, skipped, batch_cost, reader_cost, samples):
        self.loss += paddle.where(skipped, paddle.zeros_like(loss), loss)
        self.finite += 1.0 - skipped.astype("float32")
        self.batch_cost += batch_cost
        self.reader_cost += reader_cost
        self.samples += samples
        self.steps += 1


class Trainer:
    """Train a model from a resolved config (:func:`ppmirnet.config.load_config`).

    Writes into ``Global.output_dir``: ``config.yaml`` (the resolved config),
    ``train.log``, ``latest.*`` and ``best_model.*`` checkpoints. One process
    per card under ``paddle.distributed.launch``; only rank 0 writes files.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        g = cfg["Global"]
        self.output_dir = g["output_dir"]
        if g["use_visualdl"]:
            require_visualdl()  # before anything is written
        from .. import memory

        # Validation's memory budget, from what is available at start.
        self.budget = memory.make_budget(g["max_memory"], g["device"], "Global.max_memory")
        self.device = env.set_device(g["device"], g["cpu_threads"])
        self.rank, self.world = env.init_distributed()
        # Console only until the run is accepted: a run that cannot start leaves no files.
        self.log = setup_logger(None, self.rank)
        # One training per output folder: a second one stops here, before any work.
        self.lock = RunLock(self.output_dir) if self.rank == 0 else None
        if self.lock is not None:
            self.lock.acquire()
        try:
            self._setup(cfg, g)
        except BaseException:
            self.close()
            raise

    def close(self):
        """Release the output folder (idempotent); :meth:`train` does it when it ends."""
        if self.lock is not None:
            self.lock.release()

    def _setup(self, cfg, g):
        env.seed_everything(g["seed"])
        self.amp_level = amp_level(cfg)
        if self.amp_level and self.device == "cpu":
            self.log.warning("Global.auto_cast has no effect on CPU: training runs in float32")
        if self.rank == 0 and g["resume"] is not None:
            target = ckpt.find_resume(g["resume"], self.output_dir)
            if target is not None:
                ckpt.recover(target)
        env.barrier()

        # The data first: a missing dataset is reported before a large model is built.
        train_cfg = cfg["DataLoader"]["Train"]
        self.train_set, self.sampler, self.train_loader = build_train_loader(
            train_cfg, g["seed"], self.rank, self.world, log=self.log.info)
        self.iters_per_epoch = self.sampler.batches_per_epoch()
        self.eval_loader = None
        self.eval_names = None
        if g["eval_during_train"] or g["final_eval_vs_input"]:
            eval_set, self.eval_loader = build_eval_loader(cfg["DataLoader"]["Eval"], self.rank,
                                                           self.world, log=self.log.info)
            self.eval_names = image_namer(eval_set, self.eval_loader.batch_sampler.indices)
        self.mixup = train_cfg["mixup"]
        self.batch_size = train_cfg["sampler"]["batch_size"]
        self.total_iters = g["total_iters"]  # None: epoch-based
        self.stages = progressive_stages(train_cfg["progressive"])
        self._stage_logged = None

        self.model = build_model(cfg["Arch"])
        if g["pretrained_model"]:
            ckpt.load_weights(self.model, g["pretrained_model"])
        self.loss_fn = build_loss(cfg["Loss"])

        epochs = g["epochs"] or math.ceil(self.total_iters / self.iters_per_epoch)
        self.scheduler = build_lr_scheduler(cfg["LRScheduler"], epochs, self.iters_per_epoch)
        self.optimizer = build_optimizer(cfg["Optimizer"], self.model.parameters(), self.scheduler)
        self.scaler = None
        if self.amp_level:
            # GPU only: on CPU Paddle disables the scaler (and auto_cast, decorate).
            self.scaler = paddle.amp.GradScaler(
                init_loss_scaling=g["scale_loss"],
                use_dynamic_loss_scaling=g["use_dynamic_loss_scaling"])

        self.epoch = 1          # epoch in progress (1-based)
        self.epoch_iter = 0     # batches of it already done
        self.global_step = 0    # iterations done in total
        self.saved_step = None  # global step of the weights in output_dir/latest
        self._weights_checked = None  # the global step whose weights were found finite
        self.best = {"metric": cfg["Metric"]["best"], "value": -math.inf, "epoch": 0, "step": 0}
        # Consecutive non-finite steps so far, on the device (see _train_step).
        self.nonfinite_run = paddle.zeros([], "float32")
        self.nonfinite_max = paddle.zeros([], "float32")
        new_run = ckpt.find_resume(g["resume"], self.output_dir) is None
        if self.world > 1 and g["resume"] is not None:
            # Every process reads the checkpoint: on several machines the folder must be shared.
            seeing = int(env.all_reduce_sum([0.0 if new_run else 1.0])[0])
            if seeing not in (0, self.world):
                raise UserError(
                    f"{seeing} of {self.world} processes see a checkpoint to resume in "
                    f"{self.output_dir}: on several machines Global.output_dir must be a folder "
                    f"every machine shares (or give Global.resume the checkpoint's path on each)")
        # The float32 checkpoint is loaded into the float32 model, then O2 casts it.
        resumed, notes = self._resume(g["resume"])

        # The configuration is accepted (resume checks included): now the run's files.
        if self.rank == 0 and new_run:
            # A new run never replaces an earlier run's checkpoints: they are moved aside
            # (the pretrained weights, even from that folder, are already loaded).
            archive_earlier(self.output_dir, [n + e for n in ("latest", "best_model")
                                              for e in ckpt.EXTENSIONS], log=self.log.info)
        self.log = setup_logger(os.path.join(self.output_dir, "train.log"), self.rank)
        self.log.info(f"writing config.yaml, train.log and checkpoints to "
                      f"{os.path.abspath(self.output_dir)}")
        if self.rank == 0:
            save_config(cfg, os.path.join(self.output_dir, "config.yaml"))
        if g["pretrained_model"]:
            self.log.info(f"loaded weights {g['pretrained_model']}")
        for note in notes:
            self.log.warning(note)
        if resumed:
            self.log.info(resumed)
        self.visual = VisualLog(os.path.join(self.output_dir, "vdl")
                                if g["use_visualdl"] and self.rank == 0 else None)
        if self.amp_level == "O2":
            # Half-precision weights with float32 master copies; state dicts
            # are saved in float32 so checkpoints load under any level.
            self.model, self.optimizer = paddle.amp.decorate(
                models=self.model, optimizers=self.optimizer, level="O2",
                save_dtype="float32")

        self.train_model = self.model
        if self.world > 1:
            self.train_model = paddle.DataParallel(self.model)

    # -- checkpoints -----------------------------------------------------------------

    def _states(self):
        return {
            "epoch": self.epoch,
            "epoch_iter": self.epoch_iter,
            "global_step": self.global_step,
            "iters_per_epoch": self.iters_per_epoch,
            "best": dict(self.best),
            "lr_scheduler": self.scheduler.state_dict(),
            "rng": compat.get_rng_state(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "arch": dict(self.model.arch),
            "parameter_names": ckpt.parameter_names(self.model),
        }

    def _save(self, name):
        """Save checkpoint ``name``; weights that are no longer finite are never saved."""
        self._check_weights()
        if self.rank == 0:
            ckpt.save_checkpoint(os.path.join(self.output_dir, name), self.model.state_dict(),
                                 self.optimizer.state_dict(), self._states(),
                                 arch=self.cfg["Arch"])
        if name == "latest":
            self.saved_step = self.global_step

    def _weights_finite(self):
        """A bool tensor on the device: whether every parameter is finite."""
        return paddle.stack([paddle.isfinite(p).all() for p in self.model.parameters()]).all()

    def _check_weights(self, finite=None):
        """End the run (saving nothing) when a parameter is NaN or infinite.

        ``finite``: the flag already read at this step; otherwise it is read
        (a host sync), once per step. The cards hold the same weights, so
        every card decides alike.
        """
        if self._weights_checked == self.global_step:
            return
        if finite is None:
            finite = bool(self._weights_finite())
        self._weights_checked = self.global_step
        if finite:
            return
        where = os.path.join(self.output_dir, "latest")
        if self.saved_step is not None:
            kept = (f"{where} keeps the weights of global step {self.saved_step}, the last saved "
                    f"(finite) ones: lower the learning rate (or check the data) and resume with "
                    f"-o Global.resume=auto")
        else:
            kept = ("no checkpoint of this run was saved: lower the learning rate (or check the "
                    "data) and start again")
        msg = (f"the weights became NaN or infinite by epoch {self.epoch}, iteration "
               f"{self.epoch_iter} (global step {self.global_step}) and were not saved; {kept}")
        self.log.error(msg)
        raise UserError(msg)

    def _resume(self, resume):
        """Load the checkpoint ``resume`` names (see :func:`ckpt.find_resume`).

        Returns ``(line, warnings)`` to log once the run's log file is open.
        """
        prefix = ckpt.find_resume(resume, self.output_dir)
        if prefix is None:
            if resume == "auto":
                return f"no checkpoint in {self.output_dir}: starting from scratch", []
            return None, []
        notes = []
        model_state, opt_state, states = ckpt.load_checkpoint(prefix)
        ckpt.check_state_dict(self.model, model_state, prefix + ".pdparams")
        ckpt.check_finite(model_state, prefix + ".pdparams")
        if "parameter_names" in states:
            opt_state = ckpt.rename_optimizer_state(opt_state, states["parameter_names"], self.model)
        model_state, opt_state = ckpt.match_precision(self.model, model_state, opt_state,
                                                      master_weights=self.amp_level == "O2")
        self.model.set_state_dict(model_state)
        self.optimizer.set_state_dict(opt_state)
        self.scheduler.set_state_dict(states["lr_scheduler"])
        if states.get("scaler") and self.scaler is not None and self.scaler.is_enable():
            self.scaler.load_state_dict(states["scaler"])  # GPU only
        if states.get("rng") is not None:
            why = compat.set_rng_state(states["rng"])
            if why:
                notes.append(f"{prefix}: random state not restored ({why}); the run "
                             f"continues with the current one")
        self.best = dict(states["best"])
        self.global_step = int(states["global_step"])
        self.epoch = int(states["epoch"])
        self.epoch_iter = int(states["epoch_iter"])
        if int(states["iters_per_epoch"]) != self.iters_per_epoch:
            notes.append(
                f"{prefix} was saved with {states['iters_per_epoch']} iterations per epoch, "
                f"this run has {self.iters_per_epoch} (other batch size or card count): "
                f"the resumed run does not continue exactly")
        if os.path.abspath(prefix) == os.path.abspath(os.path.join(self.output_dir, "latest")):
            self.saved_step = self.global_step
        if self.epoch_iter >= self.iters_per_epoch:
            self.epoch, self.epoch_iter = self.epoch + 1, 0
        return (f"resumed from {prefix}: epoch {self.epoch}, iteration {self.epoch_iter}"
                f"/{self.iters_per_epoch}, global step {self.global_step}, "
                f"lr {self.scheduler():.6g}"), notes

    # -- steps -----------------------------------------------------------------------

    def _mix(self, noisy, clean):
        """The batch MixUp of the official training, from ``mixup.start_epoch`` on.

        Seeded by position (seed, epoch, iteration, rank), so a resumed run
        mixes exactly as an uninterrupted one.
        """
        if self.mixup["start_epoch"] is None or self.epoch < self.mixup["start_epoch"]:
            return noisy, clean
        rng = np.random.default_rng([self.cfg["Global"]["seed"] & 0xFFFFFFFF, self.epoch,
                                     self.epoch_iter, self.rank])
        return mix_batch(noisy, clean, rng, self.mixup)

    def _progressive_batch(self, noisy, clean):
        """This iteration's stage of progressive learning: a random subset and crop of the batch.

        As BasicSR: the loader yields the largest batch of the largest
        patches; 1-based iteration ``t`` is in the first stage whose
        cumulative iterations reach ``t``, and trains on ``batch_sizes[j]``
        samples drawn without replacement, cropped at one random position to
        ``patch_sizes[j]``. Seeded by position, so a resumed run continues in
        the same stage with the same crops.
        """
        t = self.global_step + 1
        j = next((i for i, c in enumerate(self.stages["ends"]) if t <= c), len(self.stages["ends"]) - 1)
        batch, patch = self.stages["batch_sizes"][j], self.stages["patch_sizes"][j]
        if self._stage_logged != j:
            self.log.info(f"[Train] progressive stage {j + 1}/{len(self.stages['ends'])} from "
                          f"iteration {t}: batch {batch} per card, patch {patch}")
            self._stage_logged = j
        rng = np.random.default_rng([self.cfg["Global"]["seed"] & 0xFFFFFFFF, 1, self.global_step,
                                     self.rank])
        n, h = noisy.shape[0], noisy.shape[2]
        if batch < n:
            idx = paddle.to_tensor(rng.choice(n, batch, replace=False))
            noisy, clean = paddle.index_select(noisy, idx), paddle.index_select(clean, idx)
        if patch < h:
            y0, x0 = int((h - patch) * rng.random()), int((noisy.shape[3] - patch) * rng.random())
            noisy = noisy[:, :, y0:y0 + patch, x0:x0 + patch]
            clean = clean[:, :, y0:y0 + patch, x0:x0 + patch]
        return noisy, clean

    def _train_step(self, noisy, clean):
        """One optimisation step; returns ``(loss, skipped)``, both still on the device.

        A step whose loss is not finite on any card is skipped on every card
        (see :func:`optimize_step`).
        """
        if self.stages is not None:
            noisy, clean = self._progressive_batch(noisy, clean)
        noisy, clean = self._mix(noisy, clean)
        loss, skipped = optimize_step(self.train_model, self.loss_fn, self.optimizer, noisy, clean,
                                      self.amp_level, self.scaler, any_rank=env.any_rank,
                                      return_skipped=True)
        self.scheduler.step()
        self.nonfinite_run = paddle.where(skipped, self.nonfinite_run + 1,
                                          paddle.zeros_like(self.nonfinite_run))
        self.nonfinite_max = paddle.maximum(self.nonfinite_max, self.nonfinite_run)
        return loss.detach(), skipped

    def _check_finite(self, meter):
        """Read the log window's figures (the one host sync); stop after too many bad steps.

        Returns the mean loss of the window's finite steps over every card
        (nan when none was finite). The non-finite counters are the same on
        every card (the flag was all-reduced), so every card decides alike.
        """
        loss, finite, run, worst, weights = (float(v) for v in paddle.stack(
            [meter.loss, meter.finite, self.nonfinite_run, self.nonfinite_max,
             self._weights_finite().astype("float32")]).numpy())
        self._check_weights(finite=weights == 1.0)
        self.nonfinite_max = paddle.full([], run, "float32")
        loss, finite = env.all_reduce_sum([loss, finite])
        skipped = meter.steps * self.world - finite
        if skipped:
            self.log.warning(f"[Train] {int(skipped) // self.world} of the last {meter.steps} "
                             f"iterations had a non-finite loss and were skipped")
        limit = self.cfg["Global"]["max_nonfinite_steps"]
        if worst >= limit:
            self._save("latest")
            env.barrier()
            where = os.path.join(self.output_dir, "latest")
            msg = (f"loss not finite for {int(worst)} consecutive iterations (limit "
                   f"Global.max_nonfinite_steps={limit}), stopping at epoch {self.epoch}, "
                   f"iteration {self.epoch_iter}; those steps were skipped, so {where} holds "
                   f"the last good weights: lower the learning rate (or check the data) and "
                   f"resume with -o Global.resume=auto")
            self.log.error(msg)
            raise UserError(msg)
        return loss / finite if finite else math.nan

    def _eval(self):
        """Validate, log, keep ``best_model``; abandoned (on a signal, see :meth:`train`) it
        saves ``latest`` and raises :class:`Interrupted`."""
        names = self.cfg["Metric"]["names"]
        result = evaluate_model(self.model, self.eval_loader, names, amp_level=self.amp_level,
                                progress=sys.stderr.isatty() and self.rank == 0,
                                protocol=self.cfg["Metric"], should_stop=self._eval_should_stop,
                                budget=self.budget, log=self.log.info, image_name=self.eval_names)
        if result is None:
            self.model.train()
            self._stop_on_signal(self._agreed_signal(), ", validation abandoned")
        self.log.info(format_eval_line(result) + f", epoch: {self.epoch}, "
                      f"iter: {self.epoch_iter}/{self.iters_per_epoch}, samples: {result['count']}")
        self._show_validation(result)
        key = self.best["metric"]
        if result[key] > self.best["value"]:
            self.best.update(value=result[key], epoch=self.epoch, step=self.global_step)
            self._save("best_model")
            self.log.info(f"[Eval] best {key}: {result[key]:.4f} (saved best_model)")
        self.model.train()
        return result

    # -- stopping on a signal ----------------------------------------------------------

    def _agreed_signal(self):
        """The signal number that asked the run to stop, the same on every card, or 0.

        With several cards the largest over them is all-reduced: a card
        signalled a step after another still stops at the same step.
        """
        signum = self._stop.signum or 0
        if self.world > 1:
            signum = int(env.all_reduce_max(signum))
        return signum

    def _eval_should_stop(self, batch):
        # A collective only at batches every card reaches (their shards differ by one sample).
        if self.world > 1:
            n, size = len(self.eval_loader.dataset), self.eval_loader.batch_sampler.batch_size
            if batch >= math.ceil(n // self.world / size):
                return False
        return self._agreed_signal() != 0

    def _stop_on_signal(self, signum, what=""):
        """Save ``latest`` at the current position and end the run with :class:`Interrupted`."""
        self._save("latest")
        env.barrier()
        where = os.path.join(self.output_dir, "latest")
        msg = (f"stopped by {signal_name(signum)} at epoch {self.epoch}, iteration "
               f"{self.epoch_iter}/{self.iters_per_epoch} (global step {self.global_step}){what}; "
               f"saved {where}: resume with -o Global.resume=auto")
        self.log.warning(msg)
        self.visual.close()
        raise Interrupted(msg, signum)

    def _steps_left(self):
        g = self.cfg["Global"]
        total = g["total_iters"] or g["epochs"] * self.iters_per_epoch
        if self.cfg["Global"]["max_iters"]:
            total = min(total, self.cfg["Global"]["max_iters"])
        return max(total - self.global_step, 0)

    def _show_validation(self, result):
        """Eval metrics and the first validation triptychs to VisualDL / ``val_images/`` (rank 0)."""
        g = self.cfg["Global"]
        if self.rank != 0:
            return
        self.visual.scalars({f"eval/{k}": result[k] for k in self.cfg["Metric"]["names"]},
                            self.global_step)
        count = max(VDL_IMAGES if g["use_visualdl"] else 0, g["save_val_images"])
        if not count:
            return
        images = validation_triptychs(DygraphRunner(self.model, self.amp_level), self.eval_loader,
                                      count)
        self.visual.images(images[:VDL_IMAGES], self.global_step)
        if g["save_val_images"]:
            save_triptychs(images[:g["save_val_images"]],
                           os.path.join(self.output_dir, "val_images", f"epoch_{self.epoch}"))

    # -- loop ------------------------------------------------------------------------

    def train(self):
        """Run the training to ``Global.epochs`` or ``Global.total_iters`` (or ``Global.max_iters``).

        Returns the last evaluation. Iteration-based runs pass over the data
        as many times as needed, validate every ``eval_interval_iters`` and
        at the end, and save ``latest`` every ``save_interval_iters`` and at
        the end.

        SIGINT (Ctrl-C) or SIGTERM ends the run after the step in progress, or
        between two batches of a validation (abandoned): ``latest`` is saved
        and :class:`~ppmirnet.engine.stop.Interrupted` raised (exit code 128 +
        the signal). A second signal, later than a second after the first,
        stops at once (the last complete checkpoint survives).
        """
        try:
            with StopFlag() as self._stop:
                return self._train()
        finally:
            self.close()

    def _train(self):
        g = self.cfg["Global"]
        epochs = g["epochs"]
        length = f"{epochs} epochs" if epochs else f"{self.total_iters} iterations"
        # The passes over the data an iteration-based run makes, for the log lines.
        shown_epochs = epochs or math.ceil(self.total_iters / self.iters_per_epoch)
        self.log.info(
            f"training {self.cfg['Arch']['name']} ({sum(int(np.prod(p.shape)) for p in self.model.parameters()):,} "
            f"parameters) on {self.world} {self.device.partition(':')[0]} process(es): {len(self.train_set)} "
            f"samples, {self.iters_per_epoch} iterations per epoch, {length}, "
            f"batch {self.batch_size} per card")
        interactive = sys.stderr.isatty() and self.rank == 0
        last_eval = None
        stop = False
        meter = _Meter()
        self.model.train()
        if self.total_iters and self.global_step >= self.total_iters:
            stop = True  # resumed from the final checkpoint
        while (epochs is None or self.epoch <= epochs) and not stop:
            self.sampler.set_epoch(self.epoch, self.epoch_iter)
            bar = None
            if interactive:
                from tqdm import tqdm

                bar = tqdm(total=self.iters_per_epoch, initial=self.epoch_iter, leave=False,
                           desc=f"epoch {self.epoch}/{epochs or shown_epochs}", dynamic_ncols=True)
            tic = time.perf_counter()
            for noisy, clean in self.train_loader:
                reader_cost = time.perf_counter() - tic
                lr = self.scheduler()
                loss, skipped = self._train_step(noisy, clean)
                self.epoch_iter += 1
                self.global_step += 1
                batch_cost = time.perf_counter() - tic
                meter.update(loss, skipped, batch_cost, reader_cost, noisy.shape[0] * self.world)
                if bar is not None:
                    bar.update(1)
                # Epoch-based runs log by position in the epoch, iteration-based ones by step.
                it, its = ((self.epoch_iter, self.iters_per_epoch) if epochs else
                           (self.global_step, self.total_iters))
                if it % g["print_batch_step"] == 0 or it == its:
                    # All cards log at the same steps: the mean loss over every card.
                    mean_loss = self._check_finite(meter)
                    if bar is not None:
                        bar.set_postfix(loss=f"{mean_loss:.4f}")
                    ips = meter.samples / meter.batch_cost
                    self.log.info(format_train_line(
                        self.epoch, epochs or shown_epochs, it, its,
                        mean_loss, lr, meter.batch_cost / meter.steps,
                        meter.reader_cost / meter.steps, ips,
                        eta=self._steps_left() * meter.batch_cost / meter.steps))
                    self.visual.scalars({"train/loss": mean_loss, "train/lr": lr, "train/ips": ips},
                                        self.global_step)
                    meter.reset()
                if self.world == 1 or self.global_step % STOP_CHECK_STEPS == 0:
                    signum = self._agreed_signal()
                    if signum:
                        if bar is not None:
                            bar.close()
                        self._stop_on_signal(signum)
                if self.total_iters and self.global_step >= self.total_iters:
                    if self.eval_loader is not None and g["eval_during_train"]:
                        last_eval = self._eval()
                    self._save("latest")
                    stop = True
                    break
                # Iteration-based runs do nothing at epoch ends.
                end_of_epoch = self.epoch_iter == self.iters_per_epoch and epochs is not None
                every = g["eval_interval_iters"]
                if self.eval_loader is not None and g["eval_during_train"] and every and \
                        self.global_step % every == 0 and not end_of_epoch:
                    last_eval = self._eval()
                save_every = g["save_interval_iters"]
                if save_every and self.global_step % save_every == 0 and not end_of_epoch:
                    self._save("latest")
                if g["max_iters"] and self.global_step >= g["max_iters"] and not end_of_epoch:
                    self._save("latest")
                    self.log.info(f"stopping at Global.max_iters={g['max_iters']}")
                    stop = True
                    break
                tic = time.perf_counter()
            if bar is not None:
                bar.close()
            if stop:
                break
            if epochs is None:
                self.epoch += 1
                self.epoch_iter = 0
                continue
            if self.eval_loader is not None and g["eval_during_train"] and (
                    self.epoch % g["eval_interval"] == 0 or self.epoch == epochs):
                last_eval = self._eval()
            self._save("latest")
            if g["max_iters"] and self.global_step >= g["max_iters"]:
                self.log.info(f"stopping at Global.max_iters={g['max_iters']}")
                stop = True
            self.epoch += 1
            self.epoch_iter = 0
        if self.best["value"] > -math.inf:
            self.log.info(f"best {self.best['metric']}: {self.best['value']:.4f} at epoch "
                          f"{self.best['epoch']} (step {self.best['step']})")
        if g["final_eval_vs_input"] and self.eval_loader is not None:
            self.compare_with_input(last_eval)
        self.visual.close()
        env.barrier()
        return last_eval

    def compare_with_input(self, model_result=None):
        """Log validation PSNR/SSIM of the model next to those of its input (noisy, LR, dark)."""
        names = self.cfg["Metric"]["names"]
        if model_result is None:
            model_result = evaluate_model(self.model, self.eval_loader, names,
                                          amp_level=self.amp_level, protocol=self.cfg["Metric"],
                                          budget=self.budget, log=self.log.info,
                                          image_name=self.eval_names)
        base = evaluate(None, self.eval_loader, names, progress=False, protocol=self.cfg["Metric"])
        self.log.info(f"[Eval] protocol: {describe_protocol(self.cfg['Metric'])}")
        self.log.info(format_eval_line(base, "[Eval] input:") + f" ({base['count']} images)")
        self.log.info(format_eval_line(model_result, "[Eval] model:      "))
        gains = []
        if "psnr" in names:
            gains.append(f"{model_result['psnr'] - base['psnr']:+.2f} dB PSNR")
        if "ssim" in names:
            gains.append(f"{model_result['ssim'] - base['ssim']:+.4f} SSIM")
        self.log.info("[Eval] model vs input: " + ", ".join(gains))
        return base, model_result

"""The training loop: optimisation, logging, validation, checkpoints, resume, AMP, multi-card."""

import math
import os
import sys
import time

import numpy as np
import paddle

from ..config import amp_level, save_config
from ..data.builder import build_eval_loader, build_train_loader
from ..data.transforms import mixup_params
from ..errors import UserError
from ..losses import build_loss
from ..modeling import build_model
from . import checkpoint as ckpt
from . import env
from ..metrics import describe_protocol
from .evaluator import evaluate, evaluate_model
from .logger import format_eval_line, format_train_line, setup_logger
from .lr import build_lr_scheduler
from .dygraph import DygraphRunner
from .visual_log import VDL_IMAGES, VisualLog, require_visualdl, save_triptychs, validation_triptychs


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


def optimize_step(model, loss_fn, optimizer, noisy, clean, amp_level=None, scaler=None):
    """One optimisation step: forward, loss, backward, update, gradients cleared.

    Returns the loss tensor. ``amp_level`` ("O1"/"O2") runs the forward under
    auto-cast with the loss scaled by ``scaler``.
    """
    if amp_level:
        with paddle.amp.auto_cast(level=amp_level):
            out = model(noisy)
        loss = loss_fn(out.astype("float32"), clean)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss = loss_fn(model(noisy), clean)
        loss.backward()
        optimizer.step()
    optimizer.clear_grad()
    return loss


class _Meter:
    """Running sums between two log lines."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss = 0.0
        self.batch_cost = 0.0
        self.reader_cost = 0.0
        self.samples = 0
        self.steps = 0

    def update(self, loss, batch_cost, reader_cost, samples):
        self.loss += loss
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
        env.set_device(g["device"])
        self.rank, self.world = env.init_distributed()
        # Console only until the data is found: a run that cannot start leaves no files.
        self.log = setup_logger(None, self.rank)
        env.seed_everything(g["seed"])
        self.amp_level = amp_level(cfg)
        if self.amp_level and g["device"] == "cpu":
            self.log.warning("Global.auto_cast has no effect on CPU: training runs in float32")

        # The data first: a missing dataset is reported before a large model is built.
        train_cfg = cfg["DataLoader"]["Train"]
        self.train_set, self.sampler, self.train_loader = build_train_loader(
            train_cfg, g["seed"], self.rank, self.world, log=self.log.info)
        self.iters_per_epoch = self.sampler.batches_per_epoch()
        self.eval_loader = None
        if g["eval_during_train"] or g["final_eval_vs_input"]:
            _, self.eval_loader = build_eval_loader(cfg["DataLoader"]["Eval"], self.rank,
                                                    self.world, log=self.log.info)
        self.mixup = train_cfg["mixup"]
        self.batch_size = train_cfg["sampler"]["batch_size"]

        self.log = setup_logger(os.path.join(self.output_dir, "train.log"), self.rank)
        if self.rank == 0:
            save_config(cfg, os.path.join(self.output_dir, "config.yaml"))
        self.visual = VisualLog(os.path.join(self.output_dir, "vdl")
                                if g["use_visualdl"] and self.rank == 0 else None)

        self.model = build_model(cfg["Arch"])
        if g["pretrained_model"]:
            ckpt.load_weights(self.model, g["pretrained_model"])
            self.log.info(f"loaded weights {g['pretrained_model']}")
        self.loss_fn = build_loss(cfg["Loss"])

        self.scheduler = build_lr_scheduler(cfg["LRScheduler"], g["epochs"], self.iters_per_epoch)
        self.optimizer = build_optimizer(cfg["Optimizer"], self.model.parameters(), self.scheduler)
        self.scaler = None
        if self.amp_level:
            self.scaler = paddle.amp.GradScaler(
                init_loss_scaling=g["scale_loss"],
                use_dynamic_loss_scaling=g["use_dynamic_loss_scaling"])
            if self.amp_level == "O2":
                # Half-precision weights with float32 master copies; state
                # dicts are saved in float32 so checkpoints load anywhere.
                self.model, self.optimizer = paddle.amp.decorate(
                    models=self.model, optimizers=self.optimizer, level="O2",
                    save_dtype="float32")

        self.epoch = 1          # epoch in progress (1-based)
        self.epoch_iter = 0     # batches of it already done
        self.global_step = 0    # iterations done in total
        self.best = {"metric": cfg["Metric"]["best"], "value": -math.inf, "epoch": 0, "step": 0}
        self._resume(g["resume"])

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
            "rng": paddle.get_rng_state(),
            "arch": dict(self.model.arch),
            "parameter_names": ckpt.parameter_names(self.model),
        }

    def _save(self, name):
        if self.rank == 0:
            ckpt.save_checkpoint(os.path.join(self.output_dir, name), self.model.state_dict(),
                                 self.optimizer.state_dict(), self._states(),
                                 arch=self.cfg["Arch"])

    def _resume(self, resume):
        if self.rank == 0 and resume is not None:
            target = ckpt.find_resume(resume, self.output_dir)
            if target is not None:
                ckpt.recover(target)
        env.barrier()
        prefix = ckpt.find_resume(resume, self.output_dir)
        if prefix is None:
            if resume == "auto":
                self.log.info(f"no checkpoint in {self.output_dir}: starting from scratch")
            return
        model_state, opt_state, states = ckpt.load_checkpoint(prefix)
        ckpt.check_state_dict(self.model, model_state, prefix + ".pdparams")
        self.model.set_state_dict(model_state)
        if "parameter_names" in states:
            opt_state = ckpt.rename_optimizer_state(opt_state, states["parameter_names"], self.model)
        self.optimizer.set_state_dict(opt_state)
        self.scheduler.set_state_dict(states["lr_scheduler"])
        if states.get("rng") is not None:
            paddle.set_rng_state(states["rng"])
        self.best = dict(states["best"])
        self.global_step = int(states["global_step"])
        self.epoch = int(states["epoch"])
        self.epoch_iter = int(states["epoch_iter"])
        if int(states["iters_per_epoch"]) != self.iters_per_epoch:
            self.log.warning(
                f"{prefix} was saved with {states['iters_per_epoch']} iterations per epoch, "
                f"this run has {self.iters_per_epoch} (other batch size or card count): "
                f"the resumed run does not continue exactly")
        if self.epoch_iter >= self.iters_per_epoch:
            self.epoch, self.epoch_iter = self.epoch + 1, 0
        self.log.info(f"resumed from {prefix}: epoch {self.epoch}, iteration {self.epoch_iter}"
                      f"/{self.iters_per_epoch}, global step {self.global_step}, "
                      f"lr {self.scheduler():.6g}")

    # -- steps -----------------------------------------------------------------------

    def _train_step(self, noisy, clean):
        if self.mixup["start_epoch"] is not None and self.epoch >= self.mixup["start_epoch"]:
            # Seeded by position, so a resumed run mixes exactly the same way.
            rng = np.random.default_rng([self.cfg["Global"]["seed"] & 0xFFFFFFFF, self.epoch,
                                         self.epoch_iter, self.rank])
            perm, lam = mixup_params(noisy.shape[0], rng, self.mixup["alpha"])
            perm, lam = paddle.to_tensor(perm), paddle.to_tensor(lam)
            noisy = lam * noisy + (1 - lam) * paddle.index_select(noisy, perm)
            clean = lam * clean + (1 - lam) * paddle.index_select(clean, perm)
        loss = optimize_step(self.train_model, self.loss_fn, self.optimizer, noisy, clean,
                             self.amp_level, self.scaler)
        self.scheduler.step()
        return float(loss)

    def _eval(self):
        names = self.cfg["Metric"]["names"]
        result = evaluate_model(self.model, self.eval_loader, names, amp_level=self.amp_level,
                                progress=sys.stderr.isatty() and self.rank == 0,
                                protocol=self.cfg["Metric"])
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

    def _steps_left(self):
        total = self.cfg["Global"]["epochs"] * self.iters_per_epoch
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
        """Run the training to ``Global.epochs`` (or ``Global.max_iters``); returns the last eval."""
        g = self.cfg["Global"]
        epochs = g["epochs"]
        self.log.info(
            f"training {self.cfg['Arch']['name']} ({sum(int(np.prod(p.shape)) for p in self.model.parameters()):,} "
            f"parameters) on {self.world} {g['device']} process(es): {len(self.train_set)} "
            f"samples, {self.iters_per_epoch} iterations per epoch, {epochs} epochs, "
            f"batch {self.batch_size} per card")
        interactive = sys.stderr.isatty() and self.rank == 0
        last_eval = None
        stop = False
        meter = _Meter()
        self.model.train()
        while self.epoch <= epochs and not stop:
            self.sampler.set_epoch(self.epoch, self.epoch_iter)
            bar = None
            if interactive:
                from tqdm import tqdm

                bar = tqdm(total=self.iters_per_epoch, initial=self.epoch_iter, leave=False,
                           desc=f"epoch {self.epoch}/{epochs}", dynamic_ncols=True)
            tic = time.perf_counter()
            for noisy, clean in self.train_loader:
                reader_cost = time.perf_counter() - tic
                lr = self.scheduler()
                loss = self._train_step(noisy, clean)
                if not math.isfinite(loss):
                    raise UserError(f"loss became {loss} at epoch {self.epoch}, iteration "
                                    f"{self.epoch_iter + 1}; lower the learning rate")
                self.epoch_iter += 1
                self.global_step += 1
                batch_cost = time.perf_counter() - tic
                meter.update(loss, batch_cost, reader_cost, noisy.shape[0] * self.world)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                if self.epoch_iter % g["print_batch_step"] == 0 or self.epoch_iter == self.iters_per_epoch:
                    # The mean loss over every card (all cards log at the same steps).
                    mean_loss = env.all_reduce_sum([meter.loss / meter.steps])[0] / self.world
                    ips = meter.samples / meter.batch_cost
                    self.log.info(format_train_line(
                        self.epoch, epochs, self.epoch_iter, self.iters_per_epoch,
                        mean_loss, lr, meter.batch_cost / meter.steps,
                        meter.reader_cost / meter.steps, ips,
                        eta=self._steps_left() * meter.batch_cost / meter.steps))
                    self.visual.scalars({"train/loss": mean_loss, "train/lr": lr, "train/ips": ips},
                                        self.global_step)
                    meter.reset()
                end_of_epoch = self.epoch_iter == self.iters_per_epoch
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
                                          amp_level=self.amp_level, protocol=self.cfg["Metric"])
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

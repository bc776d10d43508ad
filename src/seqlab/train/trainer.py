"""The one training loop, for every model that follows the model contract.

A model provides ``loss(batch) -> LossOutput``; the task provides batches for each epoch
(deterministic given the seed and the epoch, so a resumed run sees the same batches), an
``evaluate(model) -> {"val_loss": ..., ...}`` function and optionally ``final_metrics``
(expensive metrics for the last evaluation and every ``eval.final_every``-th). The
trainer never branches on the model type; it owns what every model needs: moving
batches to the model's device, mixed precision (``trainer.precision``), gradient
accumulation (``trainer.accumulate``), the lr schedule, clipping and the weight average.

In a process group (``seqlab train --nproc N``, torchrun) the model is wrapped in torch's
DistributedDataParallel, each process trains on its part of every global batch (see
``seqlab.train.distributed``), every process evaluates (so decisions that follow the
validation numbers agree) and rank 0 alone logs, writes metrics and checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from seqlab.config import ExperimentConfig
from seqlab.contract import EmbeddingPerturbable, LossOutput, contract, move_to
from seqlab.errors import ConfigError, TrainingError
from seqlab.nn.adversarial import adversarial_objective
from seqlab.nn.recurrent import cpu_has_native_bf16
from seqlab.rundir import RunDir
from seqlab.train import distributed
from seqlab.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    save_weights,
    set_rng_state,
)
from seqlab.train.device import module_device
from seqlab.train.optim import Freezer, build_optimizer, l2_weights, param_groups, penalty
from seqlab.train.schedules import Schedule

Metrics = Callable[[nn.Module], dict[str, float]]
EvalHook = Callable[[Path, dict[str, Any]], None]
"""Called after each evaluation with the run dir and the logged record (it may raise
:class:`Pruned` to stop the run)."""

_EVAL_HOOKS: ContextVar[tuple[EvalHook, ...]] = ContextVar("seqlab_eval_hooks", default=())


class Interrupted(Exception):
    """Ctrl-C during training: the state was saved and training can be resumed."""


class Pruned(Exception):
    """An evaluation hook stopped the run (a search pruned an unpromising trial); the
    state was saved at that evaluation."""


@contextlib.contextmanager
def evaluation_hook(hook: EvalHook) -> Iterator[None]:
    """Within this block every Trainer calls ``hook(run_dir, record)`` after each
    evaluation, once the record is logged and the state checkpointed: how a search sees
    the intermediate dev metric of any task's run without the task knowing."""
    token = _EVAL_HOOKS.set((*_EVAL_HOOKS.get(), hook))
    try:
        yield
    finally:
        _EVAL_HOOKS.reset(token)


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads (0 keeps torch's default). On a loaded machine one
    thread per process avoids OpenMP workers spinning against each other."""
    if threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    bad_evals: int = 0
    done: bool = False
    world: int = 1
    """The number of processes that trained it (a run resumes with as many)."""
    history: list[dict[str, Any]] = field(default_factory=list)


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


class Trainer:
    """Fit ``model`` with the optimizer, schedule and loop settings of ``cfg``.

    Writes ``run_dir/checkpoint.pt`` (the full training state, atomically),
    ``run_dir/best.safetensors`` (weights with the best ``eval.metric``) and one JSON
    line per evaluation to ``run_dir/metrics.jsonl``. With ``trainer.ema_decay > 0`` the
    trainer also keeps ``average``, an exponential moving average of the parameters
    (buffers are copied as they are), and evaluates and saves that instead of ``model``.

    ``final_metrics(model)``, when given, is merged into the record of the last
    evaluation of training and of every ``eval.final_every``-th evaluation.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: ExperimentConfig,
        run_dir: Path,
        evaluate: Metrics,
        console: Console | None = None,
        final_metrics: Metrics | None = None,
    ) -> None:
        cfg.optim.validate()  # configs built in Python skip the loader's checks
        cfg.trainer.validate()
        cfg.eval.validate()
        self.model = model
        self.cfg = cfg
        self.run_dir = run_dir
        self.files = RunDir(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.evaluate = evaluate
        self.final_metrics = final_metrics
        self.ctx = distributed.context()
        self.console = console or Console(stderr=True)
        if not self.ctx.main:
            self.console = Console(stderr=True, quiet=True)  # rank 0 speaks for all
        if cfg.optim.adversarial is not None and not isinstance(model, EmbeddingPerturbable):
            raise ConfigError(
                f"optim.adversarial: the {type(model).__name__} model has no word "
                "embeddings to perturb (it needs embed, logits_from_embeddings and "
                "loss_from_logits; the classify task's cnn and rnn have them)"
            )
        self.device = module_device(model, cfg.trainer.device)
        self.optimizer = build_optimizer(param_groups(model, cfg.optim), cfg.optim)
        self.freezer = Freezer(model, cfg.optim)
        # L2 per layer group, once (a group name that picks nothing fails before step 1)
        self._l2 = l2_weights(model, cfg.optim)
        if self.freezer.changes and self.ctx.active:
            raise ConfigError(
                "optim.freeze_epochs and optim.gradual_unfreeze change which parameters "
                "train during the run, which torch's DistributedDataParallel does not allow; "
                "train them in one process"
            )
        self._trainable: list[str] | None = None  # the layer groups training now
        self._freeze(0)  # before DistributedDataParallel reads which parameters train
        self.schedule = Schedule(self.optimizer, cfg.optim, cfg.trainer.max_steps)
        self.state = TrainState()
        precision = resolve_precision(cfg.trainer.precision, self.device)
        if cfg.trainer.precision == "auto":
            self.console.print(f"trainer.precision=auto: {precision} on this {self.device.type}")
        self.precision = precision
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None
        if precision == "bf16" and self.device.type == "cpu" and not cpu_has_native_bf16():
            self.console.print(
                "trainer.precision=bf16: this CPU has no native bf16 (oneDNN reports none), "
                "so bf16 matrix products are emulated and usually slower than fp32 here; "
                "--set trainer.precision=fp32 is likely faster",
                highlight=False,
            )
        # the losses of the steps not yet read back to the host, kept on the device (a read
        # is a sync on a GPU): read to log, evaluate, checkpoint and at each epoch's end
        self._pending: list[_Pending] = []
        self._window_loss = 0.0  # sum of loss * n over this epoch's read-back steps
        decay = cfg.trainer.ema_decay
        self.average: AveragedModel | None = None
        if decay > 0:
            self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self._stop_requested = False
        self._started = time.perf_counter()
        self._writer: Any = None
        self._ddp: DistributedDataParallel | None = None
        self._spare: Any = None  # this process's last batch (a weight-0 stand-in, see DDP)
        self._window_n_global = 0
        if self.ctx.active:
            self._ddp = DistributedDataParallel(
                _LossForward(model, self._objective),
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,  # some models skip parameters on some batches
            )  # (this broadcasts rank 0's initial weights to every process)
            if not self.ctx.main:  # dropout masks of their own; rank 0 as a single process
                seed_everything(cfg.trainer.seed + 1_000_003 * self.ctx.rank, False)

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> None:
        payload: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": rng_state(),
            "state": self.state.__dict__,
        }
        if self.average is not None:
            payload["average"] = self.average.state_dict()
        if self.scaler is not None:
            payload["scaler"] = self.scaler.state_dict()
        self._read_back()  # never overwrite the last good checkpoint with a diverged one
        if self.ctx.active:  # what differs between processes: RNGs, carried model state
            payload["ranks"] = distributed.gather(
                {"rng": rng_state(), "extra": move_to(_extra_state(self.model), "cpu")}
            )
        if self.ctx.main:
            save_checkpoint(self.files.checkpoint, payload)

    def load(self) -> None:
        payload = load_checkpoint(self.files.checkpoint, map_location=str(self.device))
        world = int(payload["state"].get("world", 1))
        if world != self.ctx.world:
            flag = f"--nproc {world}" if world > 1 else "no --nproc"
            raise ConfigError(
                f"{self.files.checkpoint}: this run was trained by {world} process(es), "
                f"not {self.ctx.world}; resume it with {flag}"
            )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
        if "ranks" in payload:
            mine = payload["ranks"][self.ctx.rank]
            set_rng_state(mine["rng"])
            self.model.load_state_dict(mine["extra"], strict=False)
        else:
            set_rng_state(payload["rng"])
        self.state = TrainState(**payload["state"])
        if self.average is not None:
            if "average" not in payload:
                raise ConfigError(
                    "this checkpoint was trained without trainer.ema_decay; resume it with "
                    "trainer.ema_decay=0"
                )
            self.average.load_state_dict(payload["average"])
        if self.scaler is not None and "scaler" in payload:
            self.scaler.load_state_dict(payload["scaler"])

    # ------------------------------------------------------------------ the loop

    def fit(self, batches: Callable[[int], Iterable[Any]], resume: bool = False) -> TrainState:
        """Train until ``trainer.epochs`` / ``max_steps`` / early stopping.

        ``batches(epoch)`` must give the same batches for the same epoch every time (and
        draw from no global RNG: the trainer reads one batch ahead, to know the last one).
        """
        if resume:
            self.load()
            self._reopen()
            if self.state.done:
                return self.state
        self.state.world = self.ctx.world
        self._started = time.perf_counter()
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._request_stop)
        self._open_tensorboard()
        try:
            self._loop(batches)
        finally:
            signal.signal(signal.SIGINT, previous)
            if self._writer is not None:
                self._writer.close()
        return self.state

    def _reopen(self) -> None:
        """A resumed run goes on if the (possibly extended) epochs / max_steps allow it."""
        st, tcfg = self.state, self.cfg.trainer
        early = bool(st.history and st.history[-1].get("early_stopped"))
        reached = tcfg.max_steps is not None and st.step >= tcfg.max_steps
        st.done = early or reached or st.epoch >= tcfg.epochs

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop_requested = True

    def _loop(self, batches: Callable[[int], Iterable[Any]]) -> None:
        tcfg = self.cfg.trainer
        st = self.state
        with self._progress() as progress:
            task_id = progress.add_task("train", total=None, loss=float("nan"), rate=0.0)
            while st.epoch < tcfg.epochs and not st.done:
                self.model.train()
                self._freeze(st.epoch)
                self._read_back()  # the last epoch's unread steps (a non-finite loss raises)
                self._window_loss = 0.0
                window_n, start = 0, time.perf_counter()
                evaluated_at = -1
                progress.update(task_id, description=f"epoch {st.epoch + 1}/{tcfg.epochs}")
                groups = _groups(batches(st.epoch), st.batch_in_epoch, tcfg.accumulate)
                for end, group, last_in_epoch in groups:
                    window_n += self._train_step(group)
                    st.batch_in_epoch = end
                    rate = window_n / _elapsed(start)
                    progress.update(task_id, advance=1, rate=rate)
                    if tcfg.log_every and st.step % tcfg.log_every == 0:
                        loss = self._mean_loss(window_n)  # reads the losses back: a sync
                        rate = self._rate(window_n, start)
                        progress.update(task_id, loss=loss)
                        if not tcfg.progress:  # plain lines for logs when the bar is off
                            self.console.print(
                                f"epoch {st.epoch + 1} step {st.step} loss {loss:.4f} "
                                f"{rate:.0f} items/s lr {self.schedule.lr:.4g}",
                                highlight=False,
                                soft_wrap=True,
                            )
                    stop, timed_out = self._flags()
                    if stop:
                        self.save()
                        raise Interrupted(
                            f"interrupted at step {st.step}; the state is saved in "
                            f"{self.run_dir}; continue with --resume"
                        )
                    # decided before evaluating, so that the last evaluation knows it is last
                    out_of_budget = self._out_of_budget(timed_out)
                    last = out_of_budget or (last_in_epoch and st.epoch + 1 >= tcfg.epochs)
                    if tcfg.eval_every and st.step % tcfg.eval_every == 0:
                        loss = self._mean_loss(window_n)
                        self._evaluate(loss, self._rate(window_n, start), last=last)
                        evaluated_at = st.step
                    elif tcfg.checkpoint_every and st.step % tcfg.checkpoint_every == 0:
                        self.save()
                    if st.done or out_of_budget:
                        st.done = True
                        break
                else:
                    st.epoch += 1
                    st.batch_in_epoch = 0
                    self.schedule.on_epoch_end()
                    self._reset_optimizer_state()
                    if st.epoch >= tcfg.epochs:
                        st.done = True
                if evaluated_at != st.step and (not tcfg.eval_every or st.done):
                    loss = self._mean_loss(window_n)
                    self._evaluate(loss, self._rate(window_n, start), last=st.done)
            st.done = True
            self.save()

    def _reset_optimizer_state(self) -> None:
        """``optim.reset_state_every``: at the end of every N-th epoch the optimizer forgets
        its statistics (torch's optimizers make them afresh at their next step). Done
        before the epoch's checkpoint, so a resumed run goes on from the reset state."""
        every = self.cfg.optim.reset_state_every
        if every and self.state.epoch % every == 0:
            self.optimizer.state.clear()

    def _freeze(self, epoch: int) -> None:
        """Freeze and unfreeze the layer groups for ``epoch`` (``optim.freeze``,
        ``optim.gradual_unfreeze``), saying so when the set changes."""
        if not self.freezer.active:
            return
        trainable = self.freezer.trainable(epoch)
        if not trainable:
            raise ConfigError(
                f"optim.freeze leaves nothing to train in epoch {epoch + 1} (the model's "
                f"groups: {', '.join(n for n, _ in self.freezer.groups)})"
            )
        self.freezer.apply(epoch)
        if trainable != self._trainable:
            self.console.print(
                f"epoch {epoch + 1}: training {', '.join(trainable)}", highlight=False
            )
            self._trainable = trainable

    def _mean_loss(self, window_n: int) -> float:
        """The mean training loss of this epoch so far (read back from the device); over
        every process's items in a process group."""
        self._read_back()
        if not self.ctx.active:
            return self._window_loss / max(window_n, 1)
        total, n = distributed.all_sum([self._window_loss, float(window_n)], self.device)
        self._window_n_global = int(n)
        return total / max(n, 1)

    def _rate(self, window_n: int, start: float) -> float:
        """Items per second this epoch, of all processes (after ``_mean_loss``)."""
        return (self._window_n_global if self.ctx.active else window_n) / _elapsed(start)

    def _flags(self) -> tuple[bool, bool]:
        """(stop requested, out of time), agreed by every process of a group (any says
        yes), so that all stop at the same step."""
        limit = self.cfg.trainer.max_minutes
        minutes = (time.perf_counter() - self._started) / 60
        stop, timed_out = self._stop_requested, limit is not None and minutes >= limit
        if self.ctx.active:
            stop, timed_out = distributed.all_any([stop, timed_out], self.device)
        return stop, timed_out

    def _read_back(self) -> None:
        """Bring the pending losses to the host in one transfer; add them to the window in
        step order, or raise at the first step whose loss (with the penalty) was not
        finite."""
        if not self._pending and not self.ctx.active:
            return
        pending, self._pending = self._pending, []
        numbers: list[float] = []
        if pending:
            values = torch.stack([p.loss for p in pending] + [p.total for p in pending])
            numbers = values.double().tolist()
        losses, totals = numbers[: len(pending)], numbers[len(pending) :]
        bad, bad_value = math.inf, math.nan
        for item, loss, total in zip(pending, losses, totals, strict=True):
            if not math.isfinite(total):
                bad, bad_value = item.step, total
                break
            self._window_loss += loss * item.n
        if self.ctx.active:  # every process stops at the first bad step of any
            bad = distributed.all_min(bad, self.device)
        if bad < math.inf:
            epoch = next((p.epoch for p in pending if p.step == bad), self.state.epoch + 1)
            raise TrainingError(
                f"loss became {bad_value} at step {int(bad)} (epoch {epoch}); the "
                f"last good checkpoint is kept in {self.files.checkpoint}; try a lower "
                f"optim.lr or trainer.clip_norm"
            )

    def _out_of_budget(self, timed_out: bool) -> bool:
        tcfg = self.cfg.trainer
        return timed_out or tcfg.max_steps is not None and self.state.step >= tcfg.max_steps

    def _train_step(self, batches: list[Any]) -> int:
        """One optimizer step on ``batches`` (``trainer.accumulate`` of them, or the rest of
        the epoch), as on their union; returns the number of items it was over.

        Each model's loss is a mean over its n items, so the accumulated gradient is
        ``sum_i n_i * grad(loss_i) / sum_i n_i``, the gradient of the mean over the union;
        the weight penalty is added once. The weights are taken relative to the first
        batch's n (so that an fp16 backward sees numbers of the usual size). One batch is
        the plain step, unscaled.
        """
        if self._ddp is not None:
            return self._train_step_ddp(self._ddp, batches)
        self.optimizer.zero_grad(set_to_none=True)
        accumulating = len(batches) > 1
        total, unit = 0, 1
        for index, batch in enumerate(batches):
            with self._autocast():
                out, objective = self._objective(move_to(batch, self.device))
            if index == 0:
                unit = max(out.n, 1)
            total += out.n
            loss = objective * (out.n / unit) if accumulating else objective
            if index == len(batches) - 1:
                extra = penalty(self.model, self.cfg.optim, self._l2)
                if extra is not None:
                    loss = loss + (extra * (total / unit) if accumulating else extra)
            self._pending.append(
                _Pending(
                    self.state.step + 1,
                    self.state.epoch + 1,
                    out.n,
                    out.loss.detach(),
                    loss.detach(),
                )
            )
            (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clipping sees the true gradients
        if accumulating:
            self._divide_grads(max(total, 1) / unit)
        self._apply_step()
        return total

    def _objective(self, batch: Any) -> tuple[LossOutput, torch.Tensor]:
        """(the model's loss, what the step minimises: the loss, plus the adversarial term
        with ``optim.adversarial``)."""
        adversarial = self.cfg.optim.adversarial
        if adversarial is None:
            out: LossOutput = contract(self.model).loss(batch)
            return out, out.loss
        return adversarial_objective(cast(EmbeddingPerturbable, self.model), batch, adversarial)

    def _train_step_ddp(self, ddp: DistributedDataParallel, batches: list[Any]) -> int:
        """One optimizer step of a process group: this process's parts of the step's global
        batches (``None`` for none: its last batch again, with weight 0). Returns the items
        of this process.

        With n_i items in this process's i-th batch and T items over all processes, the
        step's gradient must be ``sum n_i * grad(loss_i) / T``, as for one process on the
        union. Each backward gets ``loss_i * n_i / u`` where u is the mean over processes
        of their first batch's n (one number in all processes, about the size of one n);
        DDP averages over the W processes, so the gradients are finally divided by
        ``T / (W * u)`` (1 with one batch per step, the usual case). The weight penalty is
        added once per process, weighted so that it counts once in all.
        """
        world = self.ctx.world
        self.optimizer.zero_grad(set_to_none=True)
        total, unit, first_sum = 0, 1.0, 0.0
        for index, part in enumerate(batches):
            weight = part is not None
            if part is not None:
                self._spare = part
            elif self._spare is None:
                raise TrainingError(
                    f"process {self.ctx.rank} of {world} has no batch to train on (the epoch "
                    "has fewer batches than processes); use fewer processes or smaller batches"
                )
            last = index == len(batches) - 1
            # gradients are all-reduced at the step's last backward only
            with contextlib.nullcontext() if last else ddp.no_sync():
                with self._autocast():
                    out, objective = ddp(move_to(self._spare, self.device))
                n = out.n if weight else 0
                if index == 0:
                    first_sum = distributed.all_sum([float(n)], self.device)[0]
                    unit = max(first_sum, 1.0) / world
                total += n
                loss = objective * (n / unit)
                if last:
                    extra = penalty(self.model, self.cfg.optim, self._l2)
                    if extra is not None:
                        loss = loss + extra * (total / unit)
                step, epoch = self.state.step + 1, self.state.epoch + 1
                self._pending.append(_Pending(step, epoch, n, out.loss.detach(), loss.detach()))
                (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        everyone = first_sum if len(batches) == 1 else distributed.all_sum([total], self.device)[0]
        divisor = max(everyone, 1.0) / (world * unit)
        if divisor != 1.0:
            self._divide_grads(divisor)
        self._apply_step()
        return total

    def _divide_grads(self, divisor: float) -> None:
        for param in self.model.parameters():
            if param.grad is not None:
                param.grad.div_(divisor)

    def _apply_step(self) -> None:
        """Clip, step the optimizer (through the scaler), average the weights, schedule."""
        tcfg = self.cfg.trainer
        if tcfg.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), tcfg.clip_value)
        if tcfg.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tcfg.clip_norm)
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)  # skipped when a gradient overflowed
            self.scaler.update()
        if self.average is not None:
            self.average.update_parameters(self.model)
        self.schedule.on_step()
        self.state.step += 1

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _evaluated(self) -> nn.Module:
        """The weights that are evaluated and saved: the average when there is one."""
        if self.average is None:
            return self.model
        for mine, theirs in zip(self.average.module.buffers(), self.model.buffers(), strict=True):
            mine.copy_(theirs)
        return self.average.module

    def _evaluate(self, train_loss: float, rate: float, last: bool = False) -> None:
        """Evaluate, select the best weights, log the record and checkpoint; ``last``: the
        last evaluation of training, which gets ``final_metrics`` too."""
        st = self.state
        model = self._evaluated()
        model.eval()
        with torch.no_grad():
            metrics = self.evaluate(model)
        ecfg = self.cfg.eval
        record: dict[str, Any] = {
            "step": st.step,
            "epoch": st.epoch,
            "lr": self.schedule.lr,
            "train_loss": train_loss,
            "items_per_s": rate,
            **metrics,
        }
        if ecfg.metric not in metrics:
            known = ", ".join(sorted(metrics))
            raise TrainingError(f"eval.metric {ecfg.metric!r} is not measured (known: {known})")
        value = float(metrics[ecfg.metric])
        oriented = value if ecfg.mode == "min" else -value
        self.schedule.on_eval(oriented)
        if _is_better(value, st.best, ecfg.mode):
            st.best = value
            st.bad_evals = 0
            if self.ctx.main:
                save_weights(self.files.best_weights, model)
        else:
            st.bad_evals += 1
            if ecfg.select == "last":
                save_weights(self.files.best_weights, model)
            if self.cfg.trainer.early_stopping and st.bad_evals >= self.cfg.trainer.early_stopping:
                st.done = True
                record["early_stopped"] = True
        number = len(st.history) + 1  # this evaluation's, counted over resumes
        periodic = ecfg.final_every > 0 and number % ecfg.final_every == 0
        if self.final_metrics is not None and (last or st.done or periodic) and self.ctx.main:
            with torch.no_grad():
                record.update(self.final_metrics(model))
        self.model.train()
        st.history.append(record)
        if self.ctx.main:
            with open(self.files.metrics_log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, val in record.items():
                if isinstance(val, int | float) and key not in ("step", "epoch"):
                    self._writer.add_scalar(key, val, st.step)
        shown = "  ".join(
            f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float) and k != "epoch"
        )
        # soft_wrap: one line per evaluation, whatever the width (a log file is 80 columns)
        self.console.print(f"[bold]step {st.step}[/bold]  {shown}", soft_wrap=True)
        self.save()
        for hook in _EVAL_HOOKS.get():
            hook(self.run_dir, record)

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} steps"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:.0f} items/s"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.cfg.trainer.progress or not self.ctx.main,
            transient=True,
        )

    def _open_tensorboard(self) -> None:
        if not self.cfg.trainer.tensorboard or not self.ctx.main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.console.print("tensorboard is not installed; logging to metrics.jsonl only")
            return
        self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))


class _Pending(NamedTuple):
    """A training loss not yet read back to the host."""

    step: int
    epoch: int
    n: int
    loss: torch.Tensor
    """The model's mean loss over its n items (0-dim, on the device)."""
    total: torch.Tensor
    """What backward() got: the loss with the weight penalty."""


def resolve_precision(precision: str, device: torch.device) -> str:
    """``trainer.precision`` as the trainer runs it: ``auto`` is bf16 where ``device``
    computes bf16 natively (CUDA with bf16 support; a CPU with native bf16), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


class _LossForward(nn.Module):
    """``forward(batch) = objective(batch)``, the trainer's ``(loss, what the step
    minimises)`` of ``model`` (with ``optim.adversarial``, the clean loss plus the
    adversarial term): what DistributedDataParallel wraps, since it synchronises the
    gradients of what goes through ``forward``."""

    def __init__(
        self, model: nn.Module, objective: Callable[[Any], tuple[LossOutput, torch.Tensor]]
    ) -> None:
        super().__init__()
        self.model = model
        self._objective = objective

    def forward(self, batch: Any) -> tuple[LossOutput, torch.Tensor]:
        return self._objective(batch)


def _extra_state(model: nn.Module) -> dict[str, Any]:
    """The ``_extra_state`` entries of the model's state dict (state carried between
    batches, which differs between the processes of a group)."""
    return {k: v for k, v in model.state_dict().items() if k.endswith("_extra_state")}


def _groups(batches: Iterable[Any], skip: int, size: int) -> Iterator[tuple[int, list[Any], bool]]:
    """Consecutive groups of ``size`` batches after the first ``skip`` (the rest of the
    epoch makes the last group), as ``(batches consumed, group, last in the epoch)``."""
    group: list[Any] = []
    end = 0
    for index, batch in enumerate(batches):
        if index < skip:
            continue  # resumed mid-epoch: these batches were already trained on
        if len(group) == size:
            yield end, group, False
            group = []
        group.append(batch)
        end = index + 1
    if group:
        yield end, group, True


def _elapsed(start: float) -> float:
    return max(time.perf_counter() - start, 1e-9)

"""The one training loop, for every model that follows the model contract.

A model provides ``loss(batch) -> LossOutput``; the task provides batches for each epoch
(deterministic given the seed and the epoch, so a resumed run sees the same batches), an
``evaluate(model) -> {"val_loss": ..., ...}`` function and optionally ``final_metrics``
(expensive metrics for the last evaluation and every ``eval.final_every``-th). The
trainer never branches on the model type; it owns what every model needs: moving
batches to the model's device, mixed precision (``trainer.precision``), gradient
accumulation (``trainer.accumulate``), the lr schedule, clipping and the weight average.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from seqlab.config import ExperimentConfig
from seqlab.contract import LossOutput, contract, move_to
from seqlab.errors import ConfigError, TrainingError
from seqlab.rundir import RunDir
from seqlab.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    save_weights,
    set_rng_state,
)
from seqlab.train.device import module_device
from seqlab.train.optim import build_optimizer, penalty
from seqlab.train.schedules import Schedule

Metrics = Callable[[nn.Module], dict[str, float]]


class Interrupted(Exception):
    """Ctrl-C during training: the state was saved and training can be resumed."""


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
        self.console = console or Console(stderr=True)
        self.device = module_device(model, cfg.trainer.device)
        self.optimizer = build_optimizer(model.parameters(), cfg.optim)
        self.schedule = Schedule(self.optimizer, cfg.optim, cfg.trainer.max_steps)
        self.state = TrainState()
        precision = cfg.trainer.precision
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None
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

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> None:
        payload = {
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
        save_checkpoint(self.files.checkpoint, payload)

    def load(self) -> None:
        payload = load_checkpoint(self.files.checkpoint, map_location=str(self.device))
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
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
                        progress.update(task_id, loss=loss)
                        if not tcfg.progress:  # plain lines for logs when the bar is off
                            self.console.print(
                                f"epoch {st.epoch + 1} step {st.step} loss {loss:.4f} "
                                f"{rate:.0f} items/s lr {self.schedule.lr:.4g}",
                                highlight=False,
                                soft_wrap=True,
                            )
                    if self._stop_requested:
                        self.save()
                        raise Interrupted(
                            f"interrupted at step {st.step}; the state is saved in "
                            f"{self.run_dir}; continue with --resume"
                        )
                    # decided before evaluating, so that the last evaluation knows it is last
                    out_of_budget = self._out_of_budget()
                    last = out_of_budget or (last_in_epoch and st.epoch + 1 >= tcfg.epochs)
                    if tcfg.eval_every and st.step % tcfg.eval_every == 0:
                        self._evaluate(self._mean_loss(window_n), rate, last=last)
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
                    if st.epoch >= tcfg.epochs:
                        st.done = True
                if evaluated_at != st.step and (not tcfg.eval_every or st.done):
                    rate = window_n / _elapsed(start)
                    self._evaluate(self._mean_loss(window_n), rate, last=st.done)
            st.done = True
            self.save()

    def _mean_loss(self, window_n: int) -> float:
        """The mean training loss of this epoch so far (read back from the device)."""
        self._read_back()
        return self._window_loss / max(window_n, 1)

    def _read_back(self) -> None:
        """Bring the pending losses to the host in one transfer; add them to the window in
        step order, or raise at the first step whose loss (with the penalty) was not
        finite."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        values = torch.stack([p.loss for p in pending] + [p.total for p in pending])
        numbers = values.double().tolist()
        losses, totals = numbers[: len(pending)], numbers[len(pending) :]
        for item, loss, total in zip(pending, losses, totals, strict=True):
            if not math.isfinite(total):
                raise TrainingError(
                    f"loss became {total} at step {item.step} (epoch {item.epoch}); the "
                    f"last good checkpoint is kept in {self.files.checkpoint}; try a lower "
                    f"optim.lr or trainer.clip_norm"
                )
            self._window_loss += loss * item.n

    def _out_of_budget(self) -> bool:
        tcfg = self.cfg.trainer
        if tcfg.max_steps is not None and self.state.step >= tcfg.max_steps:
            return True
        minutes = (time.perf_counter() - self._started) / 60
        return tcfg.max_minutes is not None and minutes >= tcfg.max_minutes

    def _train_step(self, batches: list[Any]) -> int:
        """One optimizer step on ``batches`` (``trainer.accumulate`` of them, or the rest of
        the epoch), as on their union; returns the number of items it was over.

        Each model's loss is a mean over its n items, so the accumulated gradient is
        ``sum_i n_i * grad(loss_i) / sum_i n_i``, the gradient of the mean over the union;
        the weight penalty is added once. The weights are taken relative to the first
        batch's n (so that an fp16 backward sees numbers of the usual size). One batch is
        the plain step, unscaled.
        """
        tcfg = self.cfg.trainer
        self.optimizer.zero_grad(set_to_none=True)
        accumulating = len(batches) > 1
        total, unit = 0, 1
        for index, batch in enumerate(batches):
            with self._autocast():
                out: LossOutput = contract(self.model).loss(move_to(batch, self.device))
            if index == 0:
                unit = max(out.n, 1)
            total += out.n
            loss = out.loss * (out.n / unit) if accumulating else out.loss
            if index == len(batches) - 1:
                extra = penalty(self.model, self.cfg.optim)
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
            for param in self.model.parameters():
                if param.grad is not None:
                    param.grad.div_(max(total, 1) / unit)
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
        return total

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
            save_weights(self.files.best_weights, model)
        else:
            st.bad_evals += 1
            if self.cfg.trainer.early_stopping and st.bad_evals >= self.cfg.trainer.early_stopping:
                st.done = True
                record["early_stopped"] = True
        number = len(st.history) + 1  # this evaluation's, counted over resumes
        periodic = ecfg.final_every > 0 and number % ecfg.final_every == 0
        if self.final_metrics is not None and (last or st.done or periodic):
            with torch.no_grad():
                record.update(self.final_metrics(model))
        self.model.train()
        st.history.append(record)
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

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} steps"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:.0f} items/s"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.cfg.trainer.progress,
            transient=True,
        )

    def _open_tensorboard(self) -> None:
        if not self.cfg.trainer.tensorboard:
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

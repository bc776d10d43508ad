"""Learning-rate schedules by name (``optim.schedule``), and when the trainer steps them.

Each entry builds a ``torch.optim.lr_scheduler`` (or nothing, for ``constant``) and says
which event advances it: every optimizer step, every epoch, or every evaluation. Step
schedules give the lr of the s-th optimizer update (s = 1, 2, ...), with ``lr`` the
configured peak ``optim.lr``, W ``optim.warmup_steps`` and T ``optim.total_steps``:

    warmup   lr_s = lr * min(1, s / W)
    noam     lr_s = lr * sqrt(W) * min(s^-1/2, s * W^-3/2)         (Vaswani et al. 2017)
             i.e. linear warmup to lr at s = W, then lr * sqrt(W / s)
    cosine   lr_s = lr * s / W                                         for s <= W
             lr_s = min_lr + (lr - min_lr) * (1 + cos(pi * (s - W) / (T - W))) / 2
                                                                       for W < s <= T
             lr_s = min_lr                                             after T

The epoch schedule ``piecewise`` gives the lr of epoch e (from 0) as the lr of the last
``optim.lr_epochs`` entry ``[start, lr]`` with start <= e (the MemN2N recipe: linear start
at 0.005, then 0.01 halved every 15 epochs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.optim import lr_scheduler

from seqlab.config import OptimConfig
from seqlab.errors import ConfigError
from seqlab.registry import Registry
from seqlab.train.optim import PLAIN_SGD

Event = Literal["step", "epoch", "eval", "never"]


@dataclass(frozen=True)
class ScheduleSpec:
    """``build(optimizer, optim, max_steps)`` -> a torch scheduler (None: constant lr);
    ``advances_on``: the event after which the trainer steps it."""

    build: Callable[[torch.optim.Optimizer, OptimConfig, int | None], Any]
    advances_on: Event


def noam_factor(step: int, warmup: int) -> float:
    """lr_s / lr for the s-th update: sqrt(W) * min(s^-1/2, s * W^-3/2), 1 at s = W."""
    s, w = max(step, 1), max(warmup, 1)
    return math.sqrt(w) * min(s**-0.5, s * w**-1.5)


def cosine_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """lr_s / lr for the s-th update; ``floor`` = min_lr / lr."""
    if warmup > 0 and step <= warmup:
        return step / warmup
    if step >= total:
        return floor
    progress = (step - warmup) / (total - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _constant(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> None:
    return None


def _step(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> Any:
    return lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)


def _epoch_decay(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> Any:
    start, gamma = cfg.decay_start, cfg.gamma
    return lr_scheduler.LambdaLR(optimizer, lambda k: gamma ** max(0, k + 1 - start))


def _plateau(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> Any:
    return lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.gamma, patience=cfg.patience, min_lr=cfg.min_lr
    )


def _warmup(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> Any:
    warm = max(1, cfg.warmup_steps)
    # LambdaLR's k counts the updates already made: update k + 1 uses factor(k)
    return lr_scheduler.LambdaLR(optimizer, lambda k: min(1.0, (k + 1) / warm))


def _noam(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> Any:
    if cfg.warmup_steps < 1:
        raise ConfigError("optim.schedule=noam needs optim.warmup_steps >= 1")
    warm = cfg.warmup_steps
    return lr_scheduler.LambdaLR(optimizer, lambda k: noam_factor(k + 1, warm))


def _cosine(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> Any:
    total = cfg.total_steps if cfg.total_steps is not None else max_steps
    if total is None:
        raise ConfigError(
            "optim.schedule=cosine needs optim.total_steps (or trainer.max_steps) to know "
            "where the decay ends"
        )
    if not 0 <= cfg.warmup_steps < total:
        raise ConfigError(
            f"optim.schedule=cosine needs 0 <= optim.warmup_steps < the total steps "
            f"({cfg.warmup_steps} and {total})"
        )
    warm, floor = cfg.warmup_steps, cfg.min_lr / cfg.lr
    return lr_scheduler.LambdaLR(optimizer, lambda k: cosine_factor(k + 1, warm, total, floor))


def _piecewise(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None) -> Any:
    table = sorted(cfg.lr_epochs)
    base = cfg.lr

    def factor(epoch: int) -> float:
        return float([lr for start, lr in table if start <= epoch][-1]) / base

    return lr_scheduler.LambdaLR(optimizer, factor)


SCHEDULES: Registry[ScheduleSpec] = Registry("schedule")
SCHEDULES.register("constant", ScheduleSpec(_constant, "never"))
SCHEDULES.register("step", ScheduleSpec(_step, "epoch"))
SCHEDULES.register("epoch_decay", ScheduleSpec(_epoch_decay, "epoch"))
SCHEDULES.register("plateau", ScheduleSpec(_plateau, "eval"))
SCHEDULES.register("warmup", ScheduleSpec(_warmup, "step"))
SCHEDULES.register("noam", ScheduleSpec(_noam, "step"))
SCHEDULES.register("cosine", ScheduleSpec(_cosine, "step"))
SCHEDULES.register("piecewise", ScheduleSpec(_piecewise, "epoch"))


class Schedule:
    """The ``optim.schedule`` of ``optimizer``, with the hooks the trainer calls after each
    optimizer step, epoch and evaluation."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int | None = None
    ) -> None:
        spec = SCHEDULES.get(cfg.schedule)
        self.cfg = cfg
        self.optimizer = optimizer
        self.advances_on: Event = spec.advances_on
        self.scheduler: Any = spec.build(optimizer, cfg, max_steps)

    def on_step(self) -> None:
        if self.advances_on == "step":
            self.scheduler.step()

    def on_epoch_end(self) -> None:
        if self.advances_on == "epoch":
            self.scheduler.step()

    def on_eval(self, loss_like: float) -> None:
        """``loss_like``: the selection metric oriented so that lower is better."""
        if self.advances_on == "eval":
            self.scheduler.step(loss_like)

    @property
    def lr(self) -> float:
        """The lr of the first parameter group ``optim.name`` updates (not of a plain-SGD
        group, ``optim.sgd_groups``)."""
        groups = self.optimizer.param_groups
        main = [g for g in groups if not g.get(PLAIN_SGD)] or groups
        return float(main[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else dict(self.scheduler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)

"""The schedule registry: each schedule's lr at given steps, against its formula."""

from __future__ import annotations

import math
import typing

import pytest
import torch

from seqlab.config import OptimConfig
from seqlab.errors import ConfigError
from seqlab.train.schedules import SCHEDULES, Schedule


def lrs(cfg: OptimConfig, steps: int, max_steps: int | None = None) -> list[float]:
    """The lr used by updates 1..steps (the schedule advanced after each update)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    schedule = Schedule(optimizer, cfg, max_steps)
    used = []
    for _ in range(steps):
        used.append(schedule.lr)
        optimizer.step()
        schedule.on_step()
    return used


def test_every_configurable_schedule_is_registered() -> None:
    hints = typing.get_type_hints(OptimConfig)
    assert set(typing.get_args(hints["schedule"])) == set(SCHEDULES.names())


def test_noam_warms_up_to_lr_then_decays_as_inverse_square_root() -> None:
    lr, warm = 0.002, 4
    used = lrs(OptimConfig(lr=lr, schedule="noam", warmup_steps=warm), 16)
    for step in (1, 2, 3, 4, 9, 16):
        formula = lr * warm**0.5 * min(step**-0.5, step * warm**-1.5)
        assert used[step - 1] == pytest.approx(formula, rel=1e-12)
    assert used[0] == pytest.approx(lr / 4)  # linear warmup: step / W
    assert used[3] == pytest.approx(lr)  # the peak, at step W
    assert used[15] == pytest.approx(lr * math.sqrt(4 / 16))  # lr * sqrt(W / s)
    assert max(used) == used[3]


def test_cosine_warms_up_then_decays_to_min_lr_at_total_steps() -> None:
    lr, floor = 0.1, 0.01
    cfg = OptimConfig(lr=lr, schedule="cosine", warmup_steps=2, total_steps=12, min_lr=floor)
    used = lrs(cfg, 14)
    assert used[0] == pytest.approx(lr / 2) and used[1] == pytest.approx(lr)
    for step in (3, 7, 12):
        progress = (step - 2) / (12 - 2)
        formula = floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        assert used[step - 1] == pytest.approx(formula, rel=1e-12)
    assert used[6] == pytest.approx((lr + floor) / 2)  # halfway down
    assert used[11] == pytest.approx(floor) and used[13] == pytest.approx(floor)


def test_cosine_total_steps_default_to_max_steps() -> None:
    cfg = OptimConfig(lr=1.0, schedule="cosine")
    # no warmup: the cosine starts at step 0, so update s uses progress s / T
    expect = [0.5 * (1 + math.cos(math.pi * s / 4)) for s in (1, 2, 3, 4)] + [0.0]
    assert lrs(cfg, 5, max_steps=4) == pytest.approx(expect, abs=1e-12)
    assert lrs(cfg, 2, max_steps=4)[1] == pytest.approx(0.5)  # halfway at T / 2
    with pytest.raises(ConfigError, match="needs optim.total_steps"):
        lrs(cfg, 1)
    with pytest.raises(ConfigError, match="warmup_steps < the total steps"):
        lrs(OptimConfig(schedule="cosine", warmup_steps=5, total_steps=5), 1)
    with pytest.raises(ConfigError, match="noam needs optim.warmup_steps"):
        lrs(OptimConfig(schedule="noam"), 1)


def test_warmup_keeps_its_numbers() -> None:
    used = lrs(OptimConfig(lr=0.3, schedule="warmup", warmup_steps=3), 5)
    assert used == [0.3 * 1 / 3, 0.3 * 2 / 3, 0.3, 0.3, 0.3]


def test_epoch_and_eval_schedules_advance_on_their_event() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    decay = Schedule(optimizer, OptimConfig(lr=1.0, schedule="epoch_decay", decay_start=1))
    optimizer.step()
    decay.on_step()
    decay.on_eval(1.0)
    assert decay.lr == 1.0
    decay.on_epoch_end()
    decay.on_epoch_end()
    assert decay.lr == 0.25
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    plateau = Schedule(optimizer, OptimConfig(lr=1.0, schedule="plateau", patience=0))
    optimizer.step()
    plateau.on_eval(1.0)
    plateau.on_epoch_end()
    plateau.on_eval(2.0)
    assert plateau.lr == 0.5

"""Gradient accumulation: N batches per optimizer step equal one N-times-larger batch;
accumulate=1 is the plain training loop, number for number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.contract import LossOutput
from seqlab.train.trainer import Trainer, seed_everything

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class Masked(nn.Module):
    """Regression whose loss is the mean over the unmasked items only, so ``n`` differs
    from the batch size and between batches."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))

    def loss(self, batch: Batch) -> LossOutput:
        x, y, mask = batch
        error = (self.net(x).squeeze(-1) - y).pow(2)
        n = int(mask.sum())
        return LossOutput((error * mask).sum() / n, n)


def micro_batches(epoch: int) -> list[Batch]:
    """Eight batches of 6 examples with 2 to 6 of them counted."""
    g = torch.Generator().manual_seed(epoch)
    out = []
    for i in range(8):
        x = torch.randn(6, 4, generator=g)
        mask = (torch.arange(6) < 2 + i % 5).float()
        out.append((x, x.sum(-1).sin(), mask))
    return out


def joined(epoch: int) -> list[Batch]:
    """The same examples, two consecutive batches concatenated into one."""
    small = micro_batches(epoch)
    return [
        tuple(torch.cat(pair) for pair in zip(small[i], small[i + 1], strict=True))  # type: ignore[misc]
        for i in range(0, len(small), 2)
    ]


def make_cfg(**trainer: Any) -> ExperimentConfig:
    optim = OptimConfig(
        name="sgd", lr=0.05, momentum=0.9, l2=0.01, schedule="warmup", warmup_steps=3
    )
    return ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        optim=optim,
        trainer=TrainerConfig(**({"epochs": 2, "progress": False, "clip_norm": 0.5} | trainer)),
        eval=EvalConfig(metric="val_loss"),
    )


def evaluate(model: nn.Module) -> dict[str, float]:
    x, y, mask = micro_batches(99)[0]
    return {"val_loss": float(model.loss((x, y, mask)).loss)}  # type: ignore[operator]


def train(run_dir: Path, cfg: ExperimentConfig, batches: Any, resume: bool = False) -> Trainer:
    seed_everything(1)
    trainer = Trainer(Masked(), cfg, run_dir, evaluate)
    trainer.fit(batches, resume=resume)
    return trainer


def test_accumulating_two_batches_equals_one_batch_of_both(tmp_path: Path) -> None:
    small = train(tmp_path / "small", make_cfg(accumulate=2), micro_batches)
    large = train(tmp_path / "large", make_cfg(), joined)
    assert small.state.step == large.state.step == 8  # optimizer steps: 2 epochs x 4
    assert small.schedule.lr == large.schedule.lr
    for a, b in zip(small.model.parameters(), large.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # the logged training loss is the mean over the items of the epoch either way
    for rec_a, rec_b in zip(small.state.history, large.state.history, strict=True):
        assert rec_a["train_loss"] == pytest.approx(rec_b["train_loss"], abs=1e-6)
    moved = train(tmp_path / "plain", make_cfg(), micro_batches)
    assert moved.state.step == 16
    diff = max(
        float((a - b).detach().abs().max())
        for a, b in zip(moved.model.parameters(), large.model.parameters(), strict=True)
    )
    assert diff > 1e-3  # without accumulation the same batches give other weights


def test_the_last_step_of_an_epoch_takes_the_batches_left(tmp_path: Path) -> None:
    trainer = train(tmp_path, make_cfg(accumulate=3, eval_every=2), micro_batches)
    assert trainer.state.step == 6  # 8 batches: groups of 3, 3 and 2, twice
    assert [r["step"] for r in trainer.state.history] == [2, 4, 6]


def test_resume_with_accumulation_continues_to_identical_numbers(tmp_path: Path) -> None:
    cfg = make_cfg(accumulate=3, epochs=3)
    seed_everything(1)
    full = Trainer(Masked(dropout=0.2), cfg, tmp_path / "full", evaluate)
    full.fit(micro_batches)
    part = tmp_path / "part"
    seed_everything(1)
    Trainer(Masked(dropout=0.2), make_cfg(accumulate=3, epochs=3, max_steps=4), part, evaluate).fit(
        micro_batches
    )
    seed_everything(1)
    resumed = Trainer(Masked(dropout=0.2), cfg, part, evaluate)
    resumed.fit(micro_batches, resume=True)
    assert resumed.state.step == full.state.step == 9
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_accumulate_one_is_the_plain_loop_bit_for_bit(tmp_path: Path) -> None:
    """The trainer's step (fp32, accumulate=1) is zero_grad, loss (+ penalty), backward,
    clip, step, as a hand-written loop, with dropout drawing the same random numbers."""
    cfg = make_cfg(epochs=1, accumulate=1)
    seed_everything(1)
    trainer = Trainer(Masked(dropout=0.3), cfg, tmp_path, evaluate)
    trainer.fit(micro_batches)

    from seqlab.train.optim import build_optimizer, penalty
    from seqlab.train.schedules import Schedule

    seed_everything(1)
    model = Masked(dropout=0.3)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    schedule = Schedule(optimizer, cfg.optim)
    model.train()
    total, count = 0.0, 0
    for batch in micro_batches(0):
        out = model.loss(batch)
        extra = penalty(model, cfg.optim)
        assert extra is not None
        optimizer.zero_grad()
        (out.loss + extra).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        schedule.on_step()
        total += float(out.loss.detach()) * out.n
        count += out.n
    for a, b in zip(trainer.model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert trainer.state.history[-1]["train_loss"] == total / count


def test_accumulate_must_be_positive() -> None:
    from seqlab.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.accumulate must be at least 1"):
        TrainerConfig(accumulate=0).validate()

"""The Trainer's evaluation hook (what a search prunes on) and ``eval.select``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.contract import LossOutput
from seqlab.rundir import RunDir
from seqlab.train.checkpoint import load_weights
from seqlab.train.trainer import Pruned, Trainer, evaluation_hook, seed_everything


class Line(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        x, y = batch
        return LossOutput(nn.functional.mse_loss(self.linear(x).squeeze(-1), y), len(y))


X = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5])


def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(X[i : i + 8], Y[i : i + 8]) for i in range(0, 32, 8)]


def make_cfg(lr: float, select: str = "best") -> ExperimentConfig:
    return ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        optim=OptimConfig(name="sgd", lr=lr),
        trainer=TrainerConfig(epochs=5, progress=False),
        eval=EvalConfig(metric="val_loss", mode="min", select=select),  # type: ignore[arg-type]
    )


def val_loss(model: nn.Module) -> dict[str, float]:
    with torch.no_grad():
        return {"val_loss": float(model.loss((X, Y)).loss)}


def test_hook_sees_every_evaluation_and_can_stop_the_run(tmp_path: Path) -> None:
    seen: list[tuple[Path, int, float]] = []

    def hook(run_dir: Path, record: dict[str, Any]) -> None:
        seen.append((run_dir, record["epoch"], record["val_loss"]))
        if len(seen) == 2:
            raise Pruned("enough")

    seed_everything(1)
    trainer = Trainer(Line(), make_cfg(0.05), tmp_path, val_loss)
    with evaluation_hook(hook), pytest.raises(Pruned, match="enough"):
        trainer.fit(batches)
    assert [(d, e) for d, e, _ in seen] == [(tmp_path, 1), (tmp_path, 2)]
    logged = RunDir(tmp_path).metrics_log.read_text().splitlines()
    assert len(logged) == 2 and RunDir(tmp_path).checkpoint.is_file()  # saved before the hook
    seed_everything(1)
    Trainer(Line(), make_cfg(0.05), tmp_path / "after", val_loss).fit(batches)  # hook gone
    assert len(seen) == 2


def test_select_last_keeps_the_last_weights(tmp_path: Path) -> None:
    # lr 0.8 on this quadratic overshoots more each epoch: the first evaluation is the best
    for select in ("best", "last"):
        seed_everything(1)
        trainer = Trainer(Line(), make_cfg(0.8, select), tmp_path / select, val_loss)
        trainer.fit(batches)
        history = [r["val_loss"] for r in trainer.state.history]
        model = Line()
        load_weights(RunDir(tmp_path / select).best_weights, model)
        kept = val_loss(model)["val_loss"]
        expected = min(history) if select == "best" else history[-1]
        assert history[-1] > 100 * min(history)  # so the two choices differ
        assert kept == pytest.approx(expected, rel=1e-6)
    assert dataclasses.replace(EvalConfig(), select="last").select == "last"

"""The final-metrics hook, and reading the training loss back only to log or evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.contract import LossOutput
from seqlab.train.trainer import Trainer, seed_everything


class Watched(torch.Tensor):
    """A tensor that counts how often its value (or a value computed from it) is read
    back to the host."""

    reads = 0

    def _read(self) -> None:
        Watched.reads += 1

    def __float__(self) -> float:
        self._read()
        return super().__float__()

    def __int__(self) -> int:
        self._read()
        return super().__int__()

    def __bool__(self) -> bool:
        self._read()
        return super().__bool__()

    def item(self) -> Any:
        self._read()
        return super().item()

    def tolist(self) -> Any:
        self._read()
        return super().tolist()


class Toy(nn.Module):
    def __init__(self, watched: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.watched = watched

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        x, y = batch
        loss = nn.functional.mse_loss(self.linear(x).squeeze(-1), y)
        return LossOutput(loss.as_subclass(Watched) if self.watched else loss, len(y))


def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(epoch)
    x = torch.randn(64, 4, generator=g)
    return [(x[i : i + 4], x[i : i + 4].sum(-1)) for i in range(0, 64, 4)]  # 16 batches


def make_cfg(final_every: int = 0, **trainer: Any) -> ExperimentConfig:
    return ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        optim=OptimConfig(name="sgd", lr=0.01),
        trainer=TrainerConfig(**({"epochs": 2, "progress": False} | trainer)),
        eval=EvalConfig(metric="val_loss", final_every=final_every),
    )


class Counting:
    """An expensive metric: counts its calls and checks it sees the model in eval mode."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: nn.Module) -> dict[str, float]:
        assert not model.training
        self.calls += 1
        return {"val_bleu": float(self.calls)}


def fit(run_dir: Path, cfg: ExperimentConfig, evaluate: Any = None) -> tuple[Trainer, Counting]:
    seed_everything(1)
    final = Counting()
    trainer = Trainer(
        Toy(), cfg, run_dir, evaluate or (lambda m: {"val_loss": 1.0}), final_metrics=final
    )
    trainer.fit(batches)
    return trainer, final


def bleu_steps(trainer: Trainer) -> list[int]:
    return [r["step"] for r in trainer.state.history if "val_bleu" in r]


def test_final_metrics_every_k_evaluations_and_at_the_end(tmp_path: Path) -> None:
    trainer, final = fit(tmp_path, make_cfg(final_every=3, eval_every=4))
    assert [r["step"] for r in trainer.state.history] == [4, 8, 12, 16, 20, 24, 28, 32]
    assert bleu_steps(trainer) == [12, 24, 32]  # evaluations 3, 6 and the last
    assert final.calls == 3
    assert [r["val_bleu"] for r in trainer.state.history if "val_bleu" in r] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("trainer_cfg", "steps"),
    [
        ({}, [32]),  # evaluations at each epoch's end
        ({"eval_every": 4}, [32]),  # the last step is an evaluation step
        ({"eval_every": 5}, [32]),  # it is not: the final evaluation is extra
        ({"eval_every": 4, "max_steps": 12}, [12]),  # max_steps stops at an evaluation
        ({"eval_every": 5, "max_steps": 12}, [12]),
    ],
)
def test_final_metrics_only_at_the_end(
    tmp_path: Path, trainer_cfg: dict[str, Any], steps: list[int]
) -> None:
    trainer, final = fit(tmp_path, make_cfg(**trainer_cfg))
    assert bleu_steps(trainer) == steps and final.calls == 1
    assert "val_bleu" in trainer.state.history[-1]


def test_final_metrics_at_an_early_stop(tmp_path: Path) -> None:
    values = iter([1.0, 2.0, 3.0, 4.0])
    trainer, final = fit(
        tmp_path,
        make_cfg(eval_every=4, early_stopping=2),
        evaluate=lambda m: {"val_loss": next(values)},
    )
    assert trainer.state.history[-1]["early_stopped"] is True
    assert bleu_steps(trainer) == [12] and final.calls == 1


def test_the_loss_is_read_back_only_to_log_and_evaluate(tmp_path: Path) -> None:
    """32 steps, logged every 16: one read per log line and evaluation (each reads all the
    steps since the last in one transfer), not one (or two) per step."""
    cfg = make_cfg(epochs=2, log_every=16)
    seed_everything(1)
    trainer = Trainer(Toy(watched=True), cfg, tmp_path, lambda m: {"val_loss": 1.0})
    Watched.reads = 0
    trainer.fit(batches)
    assert trainer.state.step == 32
    assert Watched.reads == 2  # at steps 16 and 32; the evaluations there find none left
    # the logged number is still the exact mean over the epoch
    seed_everything(1)
    model = Toy()
    plain = Trainer(model, cfg, tmp_path / "plain", lambda m: {"val_loss": 1.0})
    plain.fit(batches)
    assert [r["train_loss"] for r in plain.state.history] == [
        r["train_loss"] for r in trainer.state.history
    ]

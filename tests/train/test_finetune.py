"""Layer groups, discriminative learning rates, freezing and gradual unfreezing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.contract import LossOutput
from seqlab.errors import ConfigError
from seqlab.models.classifier import RNNClassifier, RNNClassifierConfig
from seqlab.train.optim import build_optimizer, layer_groups, param_groups
from seqlab.train.trainer import Trainer, seed_everything


class Stack(nn.Module):
    """A word embedding, a 2-layer LSTM and an output layer: four layer groups."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.rnn = nn.LSTM(4, 6, num_layers=2, batch_first=True)
        self.out = nn.Linear(6, 1)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        ids, y = batch
        states, _ = self.rnn(self.embedding(ids))
        return LossOutput(nn.functional.mse_loss(self.out(states[:, -1]).squeeze(-1), y), len(y))


def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(epoch)
    return [(torch.randint(10, (8, 5), generator=g), torch.randn(8, generator=g))] * 3


def config(epochs: int, **optim: Any) -> ExperimentConfig:
    return ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        optim=OptimConfig(name="adam", lr=0.01, **optim),
        trainer=TrainerConfig(epochs=epochs, progress=False),
        eval=EvalConfig(metric="val_loss", mode="min"),
    )


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict[str, torch.Tensor], model: nn.Module) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def fit(tmp_path: Path, cfg: ExperimentConfig) -> tuple[Stack, dict[str, torch.Tensor]]:
    seed_everything(1)
    model = Stack()
    before = snapshot(model)
    Trainer(model, cfg, tmp_path, lambda m: {"val_loss": 0.0}).fit(batches)
    return model, before


def test_layer_groups_are_input_first_one_per_recurrent_layer() -> None:
    names = [name for name, _ in layer_groups(Stack())]
    assert names == ["embedding", "rnn.l0", "rnn.l1", "out"]
    model = RNNClassifier(RNNClassifierConfig(embedding_size=4, hidden_size=3), 7, 2)
    groups = dict(layer_groups(model))
    assert list(groups) == ["embedding", "rnn.l0", "out"]
    assert len(groups["rnn.l0"]) == 8  # both directions of the one layer


def test_discriminative_learning_rates_land_in_the_param_groups() -> None:
    model = Stack()
    optimizer = build_optimizer(
        param_groups(model, OptimConfig(lr=0.01, layer_lr_decay=2.0)), OptimConfig(lr=0.01)
    )
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == pytest.approx(
        {"embedding": 0.00125, "rnn.l0": 0.0025, "rnn.l1": 0.005, "out": 0.01}
    )
    assert optimizer.param_groups[-1]["params"] == list(model.out.parameters())
    assert len(build_optimizer(param_groups(model, OptimConfig()), OptimConfig()).param_groups) == 1


def test_frozen_parameters_do_not_change(tmp_path: Path) -> None:
    model, before = fit(tmp_path, config(2, freeze=("embedding", "rnn")))
    assert changed(before, model) == {"out.weight", "out.bias"}


def test_freeze_epochs_fine_tunes_after_the_frozen_epochs(tmp_path: Path) -> None:
    frozen, before = fit(tmp_path / "a", config(1, freeze=("embedding",), freeze_epochs=1))
    assert not any(k.startswith("embedding") for k in changed(before, frozen))
    model, before = fit(tmp_path / "b", config(2, freeze=("embedding",), freeze_epochs=1))
    assert "embedding.weight" in changed(before, model)
    assert all(p.requires_grad for p in model.parameters())


def test_gradual_unfreezing_trains_one_more_group_each_epoch(tmp_path: Path) -> None:
    for epochs, expected in [(1, {"out"}), (2, {"out", "rnn"}), (4, {"out", "rnn", "embedding"})]:
        model, before = fit(tmp_path / str(epochs), config(epochs, gradual_unfreeze=True))
        assert {k.split(".")[0] for k in changed(before, model)} == expected
    model, before = fit(tmp_path / "two", config(2, gradual_unfreeze=True))
    assert not any(k.endswith("_l0") for k in changed(before, model))  # rnn.l1 only


def test_freeze_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="'encoder' names no layer group; the model has embedding, rnn.l0"
    ):
        fit(tmp_path, config(1, freeze=("encoder",)))
    with pytest.raises(ConfigError, match="leaves nothing to train"):
        fit(tmp_path, config(1, freeze=("embedding", "rnn", "out")))
    with pytest.raises(ConfigError, match="optim.freeze_epochs needs optim.freeze"):
        dataclasses.replace(OptimConfig(), freeze_epochs=2).validate()

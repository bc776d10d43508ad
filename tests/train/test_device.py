"""Batches move to the model's device in one place: ``move_to`` and each batch's ``to``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from torch import nn

from seqlab.config import EvalConfig, ExperimentConfig, TrainerConfig
from seqlab.contract import LossOutput, move_to
from seqlab.data.batching import pad_batch
from seqlab.models.bow import BowBatch
from seqlab.models.char_mlp_lm import WindowBatch
from seqlab.models.classifier import ClassifyBatch
from seqlab.models.rnn_lm import LMBatch
from seqlab.models.tagger import TaggerBatch
from seqlab.nn.autoencoder import LabelledBatch
from seqlab.train.device import module_device
from seqlab.train.trainer import Trainer

META = torch.device("meta")


def tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor inside ``value`` (NamedTuples, tuples, lists, dicts)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors(item)]
    return []


def padded() -> Any:
    return pad_batch([[1, 2, 3], [4]], pad_index=0)


BATCHES = {
    "Padded": padded,
    "LMBatch": lambda: LMBatch(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3), True),
    "WindowBatch": lambda: WindowBatch(torch.ones(2, 4, dtype=torch.long), torch.ones(2)),
    "BowBatch": lambda: BowBatch(
        torch.arange(5), torch.tensor([0, 3]), torch.ones(5), torch.tensor([0, 1])
    ),
    "ClassifyBatch": lambda: ClassifyBatch(padded(), torch.tensor([0, 1])),
    "TaggerBatch": lambda: TaggerBatch(
        padded(), torch.ones(2, 3, 4), torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3)
    ),
    "TaggerBatch without aux": lambda: TaggerBatch(
        padded(), torch.ones(2, 3, 4), torch.ones(2, 3), torch.ones(2, 3)
    ),
    "LabelledBatch": lambda: LabelledBatch(torch.ones(2, 6), torch.tensor([0, 1])),
}


@pytest.mark.parametrize("name", list(BATCHES))
def test_every_batch_type_moves_every_tensor(name: str) -> None:
    batch = BATCHES[name]()
    count = len(tensors(batch))
    moved = batch.to(META)
    assert type(moved) is type(batch)
    assert len(tensors(moved)) == count
    assert all(t.device == META for t in tensors(moved))
    assert all(t.device.type == "cpu" for t in tensors(batch))  # the original is kept
    again = move_to(batch, META)  # move_to uses the batch's own ``to``
    assert type(again) is type(batch) and all(t.device == META for t in tensors(again))


class Plain(NamedTuple):
    inputs: torch.Tensor
    length: int


def test_move_to_handles_containers_and_keeps_the_rest() -> None:
    batch = {
        "x": torch.ones(2),
        "pair": (torch.zeros(1), [torch.ones(3), "text"]),
        "plain": Plain(torch.ones(2), 7),
        "flag": True,
        "none": None,
    }
    moved = move_to(batch, "meta")
    assert all(t.device == META for t in tensors(moved)) and len(tensors(moved)) == 4
    assert isinstance(moved["plain"], Plain) and moved["plain"].length == 7
    assert isinstance(moved["pair"], tuple) and moved["pair"][1][1] == "text"
    assert moved["flag"] is True and moved["none"] is None
    same = torch.ones(2)
    assert move_to(same, "cpu") is same  # already there: no copy


class Recorded:
    """A batch that records the devices it was moved to."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, log: list[torch.device]) -> None:
        self.x, self.y, self.log = x, y, log

    def to(self, device: torch.device | str) -> Recorded:
        self.log.append(torch.device(device))
        return Recorded(self.x.to(device), self.y.to(device), self.log)


class Regression(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def loss(self, batch: Recorded) -> LossOutput:
        error = nn.functional.mse_loss(self.linear(batch.x).squeeze(-1), batch.y)
        return LossOutput(error, len(batch.y))


def test_the_trainer_moves_each_batch_to_the_models_device(tmp_path: Path) -> None:
    log: list[torch.device] = []
    model = Regression()
    cfg = ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        trainer=TrainerConfig(epochs=1, progress=False, accumulate=2),
        eval=EvalConfig(metric="val_loss"),
    )
    trainer = Trainer(model, cfg, tmp_path, lambda m: {"val_loss": 0.0})
    trainer.fit(lambda epoch: [Recorded(torch.ones(4, 3), torch.ones(4), log) for _ in range(5)])
    assert log == [torch.device("cpu")] * 5 and trainer.state.step == 3
    assert module_device(model) == torch.device("cpu")
    assert module_device(nn.ReLU(), "meta") == META  # no parameters: the default

"""seqlab.contract: the bottom of the model stack, and the one way batches move."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import NamedTuple

import torch

import seqlab.contract
from seqlab.contract import move_to


class Pair(NamedTuple):
    ids: torch.Tensor
    lengths: torch.Tensor


@dataclasses.dataclass(frozen=True)
class Nested:
    pair: Pair
    extra: dict[str, torch.Tensor]
    rows: list[torch.Tensor]
    note: str


class Custom:
    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def to(self, device: torch.device) -> Custom:
        return Custom(self.ids.to(device))


def test_move_to_reaches_every_tensor_and_keeps_the_types() -> None:
    batch = Nested(
        Pair(torch.ones(2, 3), torch.tensor([3, 2])),
        {"mask": torch.ones(2, 3, dtype=torch.bool)},
        [torch.zeros(1)],
        "kept",
    )
    moved = move_to(batch, "meta")
    assert isinstance(moved, Nested) and isinstance(moved.pair, Pair)
    tensors = [moved.pair.ids, moved.pair.lengths, moved.extra["mask"], *moved.rows]
    assert all(t.device.type == "meta" for t in tensors)
    assert moved.note == "kept" and moved.extra["mask"].dtype == torch.bool
    assert batch.pair.ids.device.type == "cpu"  # the original is untouched
    assert move_to(Custom(torch.ones(1)), "meta").ids.device.type == "meta"


def test_contract_imports_nothing_of_seqlab() -> None:
    tree = ast.parse(Path(seqlab.contract.__file__).read_text())
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if name.startswith("seqlab")]

"""MemN2N through the shared model battery, plus linear start's switch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlab.models.memn2n import BabiBatch, MemN2N, MemN2NConfig
from seqlab.tasks.babi_qa import Encoded, collate
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

WORDS = 16


def examples(count: int = 10, seed: int = 0) -> list[Encoded]:
    """Stories of 1-6 sentences of 1-4 words; the answer is a word of a random sentence."""
    rng = np.random.default_rng(seed)
    result = []
    for i in range(count):
        n = int(rng.integers(1, 7))
        sentences = [rng.integers(2, WORDS, size=int(rng.integers(1, 5))) for _ in range(n)]
        width = max(len(s) for s in sentences)
        story = np.zeros((n, width), dtype=np.int64)
        for j, s in enumerate(sentences):
            story[j, : len(s)] = s
        fact = int(rng.integers(0, n))
        question = rng.integers(2, WORDS, size=int(rng.integers(1, 4)))
        result.append(Encoded(story, question, int(sentences[fact][0]), (fact,), 1 + i % 2))
    return result


def build(**changes: object) -> MemN2N:
    torch.manual_seed(0)
    cfg = MemN2NConfig(embedding_size=12, hops=3, empty_slots=True)
    cfg = dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]
    return MemN2N(cfg, WORDS, memory_size=8)


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_every_parameter_gets_a_gradient(tying: str) -> None:
    assert_all_parameters_get_gradient(build(tying=tying), collate(examples()))


@pytest.mark.parametrize("encoding", ["position", "position_code", "bow"])
def test_padded_batch_equals_questions_one_at_a_time(encoding: str) -> None:
    model = build(encoding=encoding).eval()
    items = examples()
    assert_batch_equals_singles(
        lambda batch: model(batch)[0][:, 1:],
        collate(items),
        [collate([item]) for item in items],
    )


def test_overfits_ten_questions() -> None:
    model = build(random_noise=0.1)
    assert_overfits(model, collate(examples()), steps=300, lr=0.03, below=0.05)


def test_save_load_gives_identical_outputs(tmp_path: Path) -> None:
    batch = collate(examples())
    model = build(linear_start_epochs=2)
    assert_save_load_identical(model, build, lambda m: m(batch)[0][:, 1:], tmp_path)


def test_batch_moves_and_keeps_its_fields() -> None:
    batch = collate(examples(3))
    moved = batch.to("cpu")
    assert isinstance(moved, BabiBatch) and moved.story.shape == batch.story.shape
    assert batch.supporting.sum(-1).tolist() == [1, 1, 1]


def test_linear_start_ends_on_plateau_or_after_its_epochs() -> None:
    model = build(linear_start_epochs=5, linear_start_patience=2)
    assert model.linear
    assert not model.linear_start_step(2.0)
    assert not model.linear_start_step(1.5)
    assert not model.linear_start_step(1.6)  # one evaluation without improvement
    assert model.linear_start_step(1.7)  # two: linear start ends
    assert model.linear  # ... from the next training step, not during this evaluation
    model.train()
    model.loss(collate(examples(2)))
    assert not model.linear
    fixed = build(linear_start_epochs=3)
    assert [fixed.linear_start_step(v) for v in (3.0, 2.0, 1.0)] == [False, False, True]
    assert not build().linear  # no linear start: the softmax from the start

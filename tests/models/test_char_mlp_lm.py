"""Shared model battery for the fixed-window character LM."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seqlab.models.char_mlp_lm import CharMLPConfig, CharMLPLM, WindowBatch
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

CFG = CharMLPConfig(context=4, embedding_size=8, hidden_size=32, dropout=0.0, direct=True)


def build() -> CharMLPLM:
    torch.manual_seed(0)
    return CharMLPLM(12, CFG)


def batch() -> WindowBatch:
    g = torch.Generator().manual_seed(1)
    context = torch.randint(0, 12, (10, 4), generator=g)
    context[:, 0] = torch.arange(10)  # distinct contexts, so the batch can be fit exactly
    return WindowBatch(context, torch.randint(0, 12, (10,), generator=g))


def test_battery(tmp_path: Path) -> None:
    model = build()
    b = batch()
    assert model(b.context).shape == (10, 12)
    assert_all_parameters_get_gradient(model, b)
    model.eval()
    singles = [WindowBatch(b.context[i : i + 1], b.target[i : i + 1]) for i in range(10)]
    assert_batch_equals_singles(lambda x: model(x.context), b, singles)
    assert_save_load_identical(model, build, lambda m: m(b.context), tmp_path)
    assert_overfits(build(), b, steps=500, lr=0.05, below=0.05)


def test_untrained_loss_is_near_uniform() -> None:
    model = build()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert float(model.loss(batch()).loss.detach()) == pytest.approx(math.log(12), rel=1e-6)


def test_sampling_is_deterministic_by_seed() -> None:
    model = build().eval()
    a = model.sample([1, 2], 20, 1.0, torch.Generator().manual_seed(3))
    b = model.sample([1, 2], 20, 1.0, torch.Generator().manual_seed(3))
    c = model.sample([1, 2], 20, 1.0, torch.Generator().manual_seed(4))
    assert a == b and a != c
    greedy = model.sample([1, 2], 5, 0.0)
    assert greedy == model.sample([1, 2], 5, 0.0)

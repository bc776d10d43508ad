"""Shared model battery for the bag-of-words classifiers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from seqlab.models.bow import (
    AdalineConfig,
    LogRegConfig,
    MLPConfig,
    PerceptronConfig,
)
from seqlab.tasks.bow_classify import BOW_MODELS, make_batch
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

V = 30
CONFIGS = [PerceptronConfig(), AdalineConfig(), LogRegConfig(), MLPConfig(hidden_size=16)]
SEQS = [
    [2, 3, 4],
    [5, 6],
    [7, 8, 9, 10],
    [3, 11],
    [12],
    [13, 14, 15],
    [16, 2],
    [17, 18],
    [19, 20, 21],
    [22, 23],
]
LABELS = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]


def build(cfg: object, num_labels: int = 2) -> nn.Module:
    """The model the task's registry builds for ``cfg`` (vocabulary V, ``num_labels``)."""
    torch.manual_seed(0)
    sized = SimpleNamespace(vocab=range(V), labels=range(num_labels))
    return BOW_MODELS.get(cfg.name).build(SimpleNamespace(model=cfg), sized)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_battery(cfg: object, tmp_path: Path) -> None:
    model = build(cfg)
    batch = make_batch(SEQS, LABELS, "binary")
    assert model.logits(batch).shape == (10, 2)
    assert model.predict(batch).shape == (10,)
    assert_all_parameters_get_gradient(model, batch)
    model.eval()
    singles = [make_batch([s], [y], "binary") for s, y in zip(SEQS, LABELS, strict=True)]
    assert_batch_equals_singles(model.logits, batch, singles)
    assert_save_load_identical(model, lambda: build(cfg), lambda m: m.logits(batch), tmp_path)
    below = 0.05 if not isinstance(cfg, AdalineConfig) else 0.01
    assert_overfits(build(cfg), batch, steps=300, lr=0.05, below=below)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_learns_to_classify_separable_data(cfg: object) -> None:
    model = build(cfg)
    batch = make_batch(SEQS, LABELS, "binary")
    # the perceptron criterion is 0 exactly when every example is on the right side
    below = 1e-9 if isinstance(cfg, PerceptronConfig) else 0.05
    assert_overfits(model, batch, steps=300, lr=0.05, below=below)
    model.eval()
    assert torch.equal(model.predict(batch), batch.labels)


def test_perceptron_rule_is_sgd_on_perceptron_criterion() -> None:
    """One SGD step with lr 1 on a mistake adds y * x to the weights (Rosenblatt)."""
    model = build(PerceptronConfig())
    batch = make_batch([[2, 3]], [1], "binary")
    with torch.no_grad():
        model.linear.weight.weight.fill_(-0.1)  # score -0.2 + b < 0 for a positive: a mistake
        model.linear.bias.zero_()
    before = model.linear.weight.weight.detach().clone()
    model.loss(batch).loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= p.grad
    delta = model.linear.weight.weight.detach() - before
    expected = torch.zeros_like(delta)
    expected[[2, 3]] = 1.0
    torch.testing.assert_close(delta, expected)


def test_count_features_weight_repeats() -> None:
    batch = make_batch([[4, 4, 5]], [0], "count")
    assert batch.ids.tolist() == [4, 5]
    assert batch.weights.tolist() == [2.0, 1.0]
    binary = make_batch([[4, 4, 5]], [0], "binary")
    assert binary.weights.tolist() == [1.0, 1.0]


def test_perceptron_rejects_multiclass() -> None:
    from seqlab.errors import ConfigError

    with pytest.raises(ConfigError, match="binary"):
        build(PerceptronConfig(), num_labels=3)

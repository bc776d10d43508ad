"""Bag-of-words classifiers: perceptron, ADALINE, logistic regression, MLP.

Each model reads a bag of words as ``(ids, offsets, weights)`` (the
``nn.EmbeddingBag`` layout: the token ids of every example concatenated, where each
example starts, and a weight per id: 1 for presence, the count for counts). An
``EmbeddingBag(V, D, mode="sum")`` is exactly ``x @ W`` for the V-dimensional bag vector
``x``, without building ``x``.

Shapes: B examples, N ids in the batch, V vocabulary, C classes, H hidden units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.errors import ConfigError


class BowBatch(NamedTuple):
    ids: torch.Tensor
    """(N,) token ids of all examples, concatenated."""
    offsets: torch.Tensor
    """(B,) where each example starts in ``ids``."""
    weights: torch.Tensor
    """(N,) feature value of each id (1.0 for presence features)."""
    labels: torch.Tensor
    """(B,) class index."""

    def to(self, device: torch.device | str) -> BowBatch:
        """The same batch on ``device``."""
        return BowBatch(*(tensor.to(device) for tensor in self))


@dataclass(frozen=True)
class PerceptronConfig:
    """Rosenblatt's perceptron: predict sign(w.x + b); loss max(0, -y (w.x + b))."""

    name: str = "perceptron"


@dataclass(frozen=True)
class AdalineConfig:
    """Widrow-Hoff ADALINE: linear output trained on the squared error to y in {-1, +1}."""

    name: str = "adaline"


@dataclass(frozen=True)
class LogRegConfig:
    """Multinomial logistic regression: softmax(W x + b), cross-entropy."""

    name: str = "logreg"


@dataclass(frozen=True)
class MLPConfig:
    """x -> [Linear -> activation -> dropout] x layers -> Linear -> softmax."""

    name: str = "mlp"
    hidden_size: int = 256
    num_layers: int = 1
    activation: Literal["tanh", "relu", "sigmoid"] = "relu"
    dropout: float = 0.5
    input_dropout: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.input_dropout < 1.0:
            raise ConfigError("model.dropout and model.input_dropout must be in [0, 1)")
        if self.num_layers < 1 or self.hidden_size < 1:
            raise ConfigError("model.num_layers and model.hidden_size must be positive")


class LinearBow(nn.Module):
    """``scores = x @ W + b`` for a bag-of-words ``x``: (B, V) implicit -> (B, out)."""

    def __init__(self, vocab_size: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.EmbeddingBag(vocab_size, out_features, mode="sum")
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.normal_(
            self.weight.weight, std=0.01
        )  # not 0: the perceptron's subgradient at 0 is 0

    def forward(self, batch: BowBatch) -> torch.Tensor:
        return self.weight(batch.ids, batch.offsets, per_sample_weights=batch.weights) + self.bias


class _BinaryLinear(nn.Module):
    """A single linear unit with targets y in {-1, +1} (class 1 -> +1, class 0 -> -1)."""

    def __init__(self, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        if num_classes != 2:
            raise ConfigError(
                f"{type(self).__name__} is a binary classifier; got {num_classes} classes"
            )
        self.linear = LinearBow(vocab_size, 1)

    def scores(self, batch: BowBatch) -> torch.Tensor:
        """(B,) the unit's activation w.x + b."""
        return self.linear(batch).squeeze(-1)

    def predict(self, batch: BowBatch) -> torch.Tensor:
        return (self.scores(batch) > 0).long()

    def logits(self, batch: BowBatch) -> torch.Tensor:
        """(B, 2) scores usable for ranking: [-s, s]."""
        score = self.scores(batch)
        return torch.stack([-score, score], dim=-1)


class Perceptron(_BinaryLinear):
    """Perceptron criterion ``max(0, -y s)``; SGD with lr 1 on it is Rosenblatt's rule
    ``w += y x`` on every mistake."""

    def loss(self, batch: BowBatch) -> LossOutput:
        y = batch.labels.float() * 2 - 1
        return LossOutput(F.relu(-y * self.scores(batch)).mean(), int(y.numel()))


class Adaline(_BinaryLinear):
    """ADALINE: the LMS / Widrow-Hoff rule is SGD on ``1/2 (y - s)^2`` (sum of squared
    errors), with the threshold applied only at prediction."""

    def loss(self, batch: BowBatch) -> LossOutput:
        y = batch.labels.float() * 2 - 1
        return LossOutput(0.5 * (y - self.scores(batch)).pow(2).mean(), int(y.numel()))


class LogisticRegression(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.linear = LinearBow(vocab_size, num_classes)

    def logits(self, batch: BowBatch) -> torch.Tensor:
        """(B, C)"""
        return self.linear(batch)

    def loss(self, batch: BowBatch) -> LossOutput:
        return LossOutput(F.cross_entropy(self.logits(batch), batch.labels), len(batch.labels))

    def predict(self, batch: BowBatch) -> torch.Tensor:
        return self.logits(batch).argmax(-1)


_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class BowMLP(nn.Module):
    """Multi-layer perceptron on a bag of words, with dropout after each hidden layer."""

    def __init__(self, vocab_size: int, num_classes: int, cfg: MLPConfig) -> None:
        super().__init__()
        self.input_dropout = cfg.input_dropout
        self.input = nn.EmbeddingBag(vocab_size, cfg.hidden_size, mode="sum")
        self.input_bias = nn.Parameter(torch.zeros(cfg.hidden_size))
        layers: list[nn.Module] = [_ACTIVATIONS[cfg.activation](), nn.Dropout(cfg.dropout)]
        for _ in range(cfg.num_layers - 1):
            layers += [
                nn.Linear(cfg.hidden_size, cfg.hidden_size),
                _ACTIVATIONS[cfg.activation](),
                nn.Dropout(cfg.dropout),
            ]
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(cfg.hidden_size, num_classes)
        nn.init.normal_(self.input.weight, std=cfg.hidden_size**-0.5 * 0.1)

    def logits(self, batch: BowBatch) -> torch.Tensor:
        """(B, C)"""
        weights = batch.weights
        if self.training and self.input_dropout > 0:
            keep = torch.rand_like(weights) >= self.input_dropout
            weights = weights * keep / (1 - self.input_dropout)
        h = self.input(batch.ids, batch.offsets, per_sample_weights=weights) + self.input_bias
        return self.output(self.hidden(h))  # (B, C)

    def loss(self, batch: BowBatch) -> LossOutput:
        return LossOutput(F.cross_entropy(self.logits(batch), batch.labels), len(batch.labels))

    def predict(self, batch: BowBatch) -> torch.Tensor:
        return self.logits(batch).argmax(-1)

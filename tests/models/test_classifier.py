"""The shared model battery for the RNN classifier (every pooling) and the text CNN."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import cast

import pytest
import torch

from seqlab.data.batching import pad_batch
from seqlab.errors import ConfigError
from seqlab.models.classifier import (
    ClassifyBatch,
    RNNClassifier,
    RNNClassifierConfig,
    TextCNN,
    TextCNNConfig,
)
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

ROWS = [[2, 3, 4, 5, 6, 7], [8, 9], [10, 11, 3], [4], [5, 6, 7, 8], [9, 10, 2, 3, 4]]
LABELS = [0, 1, 2, 0, 1, 2]

CONFIGS: dict[str, RNNClassifierConfig | TextCNNConfig] = {
    "rnn-last": RNNClassifierConfig(embedding_size=6, hidden_size=8, dropout=0.0),
    "rnn-mean": RNNClassifierConfig(
        embedding_size=6, hidden_size=8, pooling="mean", cell="gru", num_layers=2
    ),
    "rnn-max": RNNClassifierConfig(
        embedding_size=6,
        hidden_size=8,
        pooling="max",
        bidirectional=False,
        embedding_init="uniform",
    ),
    "rnn-attention": RNNClassifierConfig(
        embedding_size=6, hidden_size=8, pooling="attention", attention_size=5
    ),
    "cnn-kim": TextCNNConfig(embedding_size=6, maps=5),
    "cnn-wide": TextCNNConfig(embedding_size=6, maps=5, padding="full", layers=2),
    "cnn-pool-padding": TextCNNConfig(embedding_size=6, maps=5, padding="full", pool_padding=True),
    "cnn-options": TextCNNConfig(
        embedding_size=6,
        maps=5,
        widths=(2, 3),
        layers=2,
        stride=2,
        dilation=2,
        padding="same",
        separable=True,
        pooling="mean",
    ),
}


def make_batch(rows: list[list[int]], labels: list[int]) -> ClassifyBatch:
    return ClassifyBatch(pad_batch(rows, 0), torch.tensor(labels))


def build(cfg: RNNClassifierConfig | TextCNNConfig) -> RNNClassifier | TextCNN:
    torch.manual_seed(0)
    if isinstance(cfg, RNNClassifierConfig):
        return RNNClassifier(cfg, 12, 3)
    return TextCNN(cfg, 12, 3)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_battery(name: str, tmp_path: Path) -> None:
    cfg = CONFIGS[name]
    model = build(cfg)
    batch = make_batch(ROWS, LABELS)
    assert model.logits(batch).shape == (6, 3)
    assert_all_parameters_get_gradient(model, batch)
    model.eval()
    singles = [make_batch([r], [y]) for r, y in zip(ROWS, LABELS, strict=True)]
    assert_batch_equals_singles(model.logits, batch, singles)
    assert_save_load_identical(
        model, lambda: build(cfg), lambda m: cast(TextCNN, m).logits(batch), tmp_path
    )
    assert_overfits(model, batch, steps=300, lr=0.05, below=0.05)
    assert model.predict(batch).tolist() == LABELS


def test_multichannel_static_channel_is_frozen(tmp_path: Path) -> None:
    vectors = tmp_path / "v.txt"
    words = [f"w{i}" for i in range(12)]
    vectors.write_text("12 4\n" + "".join(f"{w} 0.1 0.2 0.3 0.4\n" for w in words))
    from seqlab.embeddings.pretrained import load_pretrained

    cfg = TextCNNConfig(variant="multichannel", vectors=str(vectors), embedding_size=4, maps=3)
    model = build(cfg)
    assert isinstance(model, TextCNN) and model.static_embedding is not None
    load_pretrained(model.embedding, words, vectors)
    load_pretrained(model.static_embedding, words, vectors, freeze=True)
    before = model.static_embedding.weight.clone()
    assert_overfits(model, make_batch(ROWS, LABELS), steps=5, lr=0.05, below=10.0)
    torch.testing.assert_close(model.static_embedding.weight, before)
    assert not model.static_embedding.weight.requires_grad


def test_rnn_uniform_embedding_init_is_kims_range() -> None:
    torch.manual_seed(0)
    cfg = RNNClassifierConfig(embedding_size=50, hidden_size=8, embedding_init="uniform")
    weight = RNNClassifier(cfg, 200, 2).embedding.weight.detach()
    assert float(weight[1:].abs().max()) <= 0.25
    assert float(weight[1:].std()) > 0.1  # spread over the range, U(-a, a) has std a/sqrt(3)
    assert not bool(weight[0].any())  # padding is a zero vector
    normal = RNNClassifier(RNNClassifierConfig(embedding_size=50, hidden_size=8), 200, 2)
    assert float(normal.embedding.weight.detach()[1:].std()) > 0.8  # torch's N(0, 1) default


def test_max_norm_bounds_output_rows() -> None:
    model = build(TextCNNConfig(embedding_size=6, maps=5, max_norm=0.5))
    assert isinstance(model, TextCNN)
    with torch.no_grad():
        model.out.weight.mul_(100)
    model.logits(make_batch(ROWS, LABELS))
    assert float(model.out.weight.detach().norm(dim=1).max()) <= 0.5 + 1e-6


def test_pretrained_variant_needs_vectors() -> None:
    with pytest.raises(ConfigError, match="needs model.vectors"):
        TextCNNConfig(variant="static").validate()
    with pytest.raises(ConfigError, match="'rand' learns its embeddings from scratch"):
        TextCNNConfig(variant="rand", vectors="vectors.bin").validate()
    TextCNNConfig(variant="non-static", vectors="vectors.bin").validate()


def test_pool_padding_equals_pooling_over_zero_words() -> None:
    """``pool_padding`` with wide convolution gives what Kim's code computes: the sentence
    padded with zero vectors to a longer length, every window pooled."""
    cfg = TextCNNConfig(embedding_size=6, maps=5, padding="full")
    model = build(dataclasses.replace(cfg, pool_padding=True))
    plain = build(cfg)
    with torch.no_grad():  # positive biases, so the floor matters
        for branch in cast(TextCNN, model).branches:
            for conv in cast(torch.nn.ModuleList, branch):
                conv.conv.bias.uniform_(0.5, 1.0)
        plain.load_state_dict(model.state_dict())
    model.eval()
    plain.eval()
    extra = 6  # more zero words than any receptive field, on each side
    padded = [[0] * extra + row + [0] * extra for row in ROWS]
    expected = plain.logits(make_batch(padded, LABELS))  # pad id 0 counted as real words
    torch.testing.assert_close(model.logits(make_batch(ROWS, LABELS)), expected)
    assert not torch.allclose(plain.logits(make_batch(ROWS, LABELS)), expected)


def test_kim_init_zeroes_biases_and_output_layer() -> None:
    model = build(TextCNNConfig(embedding_size=6, maps=5, init="kim"))
    assert isinstance(model, TextCNN)
    assert not bool(model.out.weight.any()) and not bool(model.out.bias.any())
    for branch in model.branches:
        for conv in cast(torch.nn.ModuleList, branch):
            assert not bool(conv.conv.bias.any()) and bool(conv.conv.weight.any())
    batch = make_batch(ROWS, LABELS)
    assert not bool(model.logits(batch).any())
    assert_overfits(model, batch, steps=300, lr=0.05, below=0.05)


def test_pool_padding_needs_max_pooling_and_one_layer() -> None:
    with pytest.raises(ConfigError, match="pool_padding needs model.pooling: max"):
        TextCNNConfig(pooling="mean", pool_padding=True).validate()
    with pytest.raises(ConfigError, match="model.layers: 1"):
        TextCNNConfig(layers=2, pool_padding=True).validate()

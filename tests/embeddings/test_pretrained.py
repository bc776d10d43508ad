from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seqlab.embeddings.pretrained import load_pretrained
from seqlab.embeddings.vectors_io import WordVectors, save_word2vec
from seqlab.errors import ConfigError


@pytest.fixture
def wv() -> WordVectors:
    words = ["the", "paris", "Obama", "cat"]
    return WordVectors(words, np.arange(12, dtype=np.float32).reshape(4, 3))


ITOS = ["<pad>", "the", "Paris", "Obama", "zebra"]


def test_rows_are_copied_exact_then_lowercase(wv: WordVectors) -> None:
    torch.manual_seed(0)
    embedding = nn.Embedding(len(ITOS), 3, padding_idx=0)
    before = embedding.weight.detach().clone()
    report = load_pretrained(embedding, ITOS, wv)
    weight = embedding.weight.detach()
    assert torch.equal(weight[1], torch.tensor([0.0, 1, 2]))  # the: exact
    assert torch.equal(weight[2], torch.tensor([3.0, 4, 5]))  # Paris -> paris
    assert torch.equal(weight[3], torch.tensor([6.0, 7, 8]))  # Obama: exact
    assert torch.equal(weight[4], before[4])  # zebra: not found, unchanged
    assert torch.equal(weight[0], torch.zeros(3))  # padding row untouched
    assert (report.found, report.total, report.exact, report.lowercase) == (3, 5, 2, 1)
    assert report.missing == ("zebra",)
    assert "3/5 words (60.0%): 2 exact, 1 lowercased; missing: zebra" in str(report)


def test_frozen_or_fine_tuned(tmp_path: Path, wv: WordVectors) -> None:
    path = save_word2vec(wv, tmp_path / "v.bin", binary=True)
    frozen = nn.Embedding(len(ITOS), 3)
    load_pretrained(frozen, ITOS, path, freeze=True)
    assert not frozen.weight.requires_grad
    tuned = nn.Embedding(len(ITOS), 3)
    load_pretrained(tuned, ITOS, path, freeze=False)
    tuned(torch.tensor([1, 2])).sum().backward()
    assert tuned.weight.grad is not None and tuned.weight.grad[1].abs().sum() > 0


def test_mismatches_are_config_errors(wv: WordVectors) -> None:
    with pytest.raises(ConfigError, match="dimension 3, the embedding 4"):
        load_pretrained(nn.Embedding(len(ITOS), 4), ITOS, wv)
    with pytest.raises(ConfigError, match="5 tokens but the embedding has 6 rows"):
        load_pretrained(nn.Embedding(6, 3), ITOS, wv)

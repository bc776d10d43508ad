"""Copy pretrained word vectors into any model's ``nn.Embedding``.

Each vocabulary token is looked up exactly, then lowercased; rows of tokens found in
neither way (and the padding row) keep their current values. The embedding is then
frozen or left trainable (fine-tuned with the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from seqlab.embeddings.vectors_io import WordVectors, load_word2vec
from seqlab.errors import ConfigError

_MISSING_SHOWN = 10


@dataclass(frozen=True)
class PretrainedReport:
    """How many vocabulary tokens got a pretrained vector, and by which lookup."""

    total: int
    exact: int
    lowercase: int
    missing: tuple[str, ...]

    @property
    def found(self) -> int:
        return self.exact + self.lowercase

    @property
    def coverage(self) -> float:
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        shown = ", ".join(self.missing[:_MISSING_SHOWN])
        more = "..." if len(self.missing) > _MISSING_SHOWN else ""
        tail = f"; missing: {shown}{more}" if self.missing else ""
        return (
            f"pretrained vectors for {self.found}/{self.total} words ({self.coverage:.1%}): "
            f"{self.exact} exact, {self.lowercase} lowercased{tail}"
        )


def load_pretrained(
    embedding: nn.Embedding,
    itos: Sequence[str],
    vectors: WordVectors | str | Path,
    *,
    freeze: bool = False,
) -> PretrainedReport:
    """Overwrite the rows of ``embedding`` (V, E) whose token ``itos[i]`` has a vector.

    ``vectors`` is a :class:`WordVectors` or a word2vec text/binary file. With ``freeze``
    the weight stops receiving gradients. Raises ConfigError if ``itos`` does not match
    the embedding's rows or the vector dimension differs from ``E``.
    """
    wv = vectors if isinstance(vectors, WordVectors) else load_word2vec(vectors)
    rows, dim = embedding.weight.shape
    if len(itos) != rows:
        raise ConfigError(f"vocabulary has {len(itos)} tokens but the embedding has {rows} rows")
    if wv.dim != dim:
        raise ConfigError(f"pretrained vectors have dimension {wv.dim}, the embedding {dim}")
    targets, sources = [], []
    exact = lowercase = 0
    missing = []
    for i, token in enumerate(itos):
        if i == embedding.padding_idx:
            continue
        if token in wv.index:
            exact += 1
            source = wv.index[token]
        elif token.lower() in wv.index:
            lowercase += 1
            source = wv.index[token.lower()]
        else:
            missing.append(token)
            continue
        targets.append(i)
        sources.append(source)
    with torch.no_grad():
        weight = embedding.weight
        weight[targets] = torch.from_numpy(wv.vectors[sources]).to(weight.dtype).to(weight.device)
    embedding.weight.requires_grad_(not freeze)
    return PretrainedReport(len(itos), exact, lowercase, tuple(missing))

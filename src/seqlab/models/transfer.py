"""Start a model's word embedding and recurrent encoder from another model (transfer).

A :class:`TransferSource` is what a finished run offers (``tasks/transfer.py`` reads it):
word vectors, rows by word, and for a language model's or sequence autoencoder's encoder
the parameters of its unidirectional recurrent stack, named as
:class:`~seqlab.nn.recurrent.Recurrent` names its forward direction (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ...). :func:`transfer` copies it into any model with an
``embedding`` (V, E) and an ``rnn`` (a ``Recurrent``):

    E_target[i] = E_source[word(i)]      for every word both vocabularies hold (exact, then
                                          lowercased; the padding row and the rest stay)
    rnn direction d, layer l  <-  the source's layer l (d = backward when the source read
                                  sentences backwards, else forward)

The first E inputs of layer 0 are the word embedding; a target whose layer 0 reads more
(the tagger's character features after the word) keeps the extra input columns as they are.
Cell, embedding size, hidden size and layers must match, and an error names the one
that does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

from seqlab.embeddings.pretrained import load_pretrained
from seqlab.embeddings.vectors_io import WordVectors
from seqlab.errors import ConfigError
from seqlab.nn.recurrent import Recurrent


@dataclass(frozen=True)
class TransferSource:
    """What a run offers to ``model.init_from``."""

    path: str
    kind: str
    """A phrase for reports: ``"word2vec vectors"``, ``"language model"``, ..."""
    vectors: WordVectors
    """The source's word embedding (V_s, E_s)."""
    recurrent: dict[str, Tensor] = field(default_factory=dict)
    """The encoder's parameters by ``Recurrent`` name (forward direction); empty for
    word vectors alone."""
    cell: str | None = None
    hidden_size: int = 0
    num_layers: int = 0
    backward: bool = False
    """The encoder read sentences backwards: it starts the target's backward direction."""


class TransferTarget(Protocol):
    """A model that :func:`transfer` can start: a word embedding and a ``Recurrent``."""

    embedding: nn.Embedding
    rnn: Recurrent


def transfer(model: TransferTarget, itos: Sequence[str], source: TransferSource) -> str:
    """Copy ``source`` into ``model`` (rows of ``model.embedding`` in ``itos`` order) and
    return a one-line report; raises ConfigError naming the mismatch (and copies nothing)."""
    where = f"model.init_from {source.path}"
    embedding_size = model.embedding.embedding_dim
    if source.vectors.dim != embedding_size:
        raise ConfigError(
            f"{where}: embedding_size {source.vectors.dim} there, {embedding_size} here"
        )
    pairs = _recurrent_pairs(model.rnn, source, where) if source.recurrent else []
    shared = [w for i, w in enumerate(itos) if i != model.embedding.padding_idx]
    if not any(w in source.vectors or w.lower() in source.vectors for w in shared):
        raise ConfigError(
            f"{where}: none of the {len(shared)} words here is among its "
            f"{len(source.vectors)} words; the vocabularies do not match (another language, "
            "tokenisation or casing?)"
        )
    report = load_pretrained(model.embedding, itos, source.vectors)
    with torch.no_grad():
        for param, value in pairs:  # a wider layer 0 (more inputs) keeps its last columns
            target = param[:, : value.shape[1]] if value.dim() == 2 else param
            target.copy_(value)
    line = f"init_from {source.path} ({source.kind}): {report.found} of {report.total} words"
    if pairs:
        direction = "backward" if source.backward else "forward"
        line += f" and {len(pairs)} recurrent tensors ({direction} direction)"
        wider = model.rnn.input_size - embedding_size
        if wider > 0:
            line += f"; the other {wider} inputs of layer 0 keep their start"
    return line


def _recurrent_pairs(
    rnn: Recurrent, source: TransferSource, where: str
) -> list[tuple[nn.Parameter, Tensor]]:
    """(target parameter, source tensor) of the direction the source starts, checked."""
    checks = [
        ("cell", source.cell, rnn.cell_type),
        ("hidden_size", source.hidden_size, rnn.hidden_size),
        ("num_layers", source.num_layers, rnn.num_layers),
    ]
    for key, there, here in checks:
        if there != here:
            raise ConfigError(f"{where}: {key} {there} there, {here} here")
    if source.backward and not rnn.bidirectional:
        raise ConfigError(
            f"{where}: its encoder reads backwards (reverse_source); it needs "
            "model.bidirectional: true"
        )
    pairs = []
    for name, param in rnn.named_parameters():
        if name.endswith("_reverse") != source.backward:
            continue  # the source has one direction
        key = name.removesuffix("_reverse")
        value = source.recurrent.get(key)
        if value is None:
            raise ConfigError(f"{where}: it has no recurrent parameter {key}")
        fits = value.shape == param.shape or (
            key == "weight_ih_l0" and value.shape[0] == param.shape[0]
        )
        if not fits:
            raise ConfigError(
                f"{where}: recurrent {key} is {tuple(value.shape)} there, {tuple(param.shape)} here"
            )
        pairs.append((param, value.to(param)))
    return pairs

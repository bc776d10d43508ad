"""Tree sentiment models: a softmax over sentiment classes at every node of a binary tree.

.. code-block:: text

    leaves:  x = E[w]                                  (L, E)
    nodes:   states = compose level by level            (N, H)   (nn/tree.py)
    logits = W dropout(h) + b                           (N, C)   every node, every phrase
    loss   = mean cross-entropy over the labelled nodes

``model.name`` picks the composition: ``recnn`` (recursive NN, Socher et al. 2011),
``rntn`` (Socher et al. 2013) or ``treelstm`` (binary Tree-LSTM, Tai et al. 2015). The
models take parse trees: their collation (:func:`collate_trees`) turns examples with trees
into a :class:`TreeBatch` and says clearly when an example has none (plain text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.data.readers import Tree
from seqlab.errors import ConfigError, DataError
from seqlab.nn.tree import (
    BinaryTreeLSTMComposition,
    Composition,
    RecursiveComposition,
    TensorComposition,
    TreeStructure,
    build_structure,
    encode_levels,
    encode_nodes,
    tree_nodes,
)

IGNORE = -100
"""Label of a node with no gold label (a neutral phrase under binary labels, RAE nodes)."""


@dataclass(frozen=True)
class SentimentExample:
    """One sentence: its words, their vocabulary ids, its parse tree if it has one (labels
    already in the task's label scheme, IGNORE where unlabelled) and its sentence label."""

    tokens: list[str]
    ids: list[int]
    tree: Tree | None
    label: int


@dataclass(frozen=True)
class TreeBatch:
    structure: TreeStructure
    labels: Tensor  # (N,) gold label per node, IGNORE where none

    def to(self, device: torch.device | str) -> TreeBatch:
        return TreeBatch(self.structure.to(device), self.labels.to(device))


@dataclass(frozen=True)
class NodePredictions:
    """What a sentiment model predicts for a batch: class probabilities at every node it
    built (the root's row is the sentence's prediction) and the gold labels it knows."""

    structure: TreeStructure
    probs: Tensor  # (N, C)
    gold: Tensor  # (N,) IGNORE where unlabelled


def plain_text_error(example: SentimentExample) -> DataError:
    text = " ".join(example.tokens)
    return DataError(
        f"this model reads parse trees, e.g. (3 (2 It) (4 (2 's) (3 fun))); got plain text "
        f"{text[:40]!r}: parse it first (or train the rae model, which builds its own tree)"
    )


def collate_trees(examples: Sequence[SentimentExample]) -> TreeBatch:
    """A level-batched :class:`TreeBatch` of examples that have parse trees."""
    lists, labels = [], []
    for example in examples:
        if example.tree is None:
            raise plain_text_error(example)
        nodes, node_labels = tree_nodes(example.tree, example.ids)
        lists.append(nodes)
        labels.append(node_labels)
    structure, ids = build_structure(lists)
    gold = torch.full((structure.num_nodes,), IGNORE, dtype=torch.long)
    for positions, node_labels in zip(ids, labels, strict=True):
        gold[positions] = torch.tensor(node_labels, dtype=torch.long)
    return TreeBatch(structure, gold)


@dataclass(frozen=True)
class TreeModelConfig:
    name: str = "rntn"
    """``recnn`` (recursive NN), ``rntn`` or ``treelstm``."""
    embedding_size: int = 25
    hidden_size: int = 25
    """Node state size; the recursive NN and the RNTN compose word vectors, so for them it
    must equal ``embedding_size``."""
    dropout: float = 0.0
    """Dropout on the node states before the softmax (Tai et al. use 0.5)."""
    embedding_init: float = 0.1
    """Word vectors start U(-a, a)."""
    tensor_std: float = 0.01
    """RNTN: V starts N(0, std²)."""
    evaluation: Literal["levels", "nodes"] = "levels"
    """``levels``: one batched call per tree height; ``nodes``: one node at a time (the
    reference; same numbers, much slower)."""

    def validate(self) -> None:
        if self.name not in ("recnn", "rntn", "treelstm"):
            raise ConfigError(f"model.name {self.name!r}: expected recnn, rntn or treelstm")
        if self.name != "treelstm" and self.hidden_size != self.embedding_size:
            raise ConfigError(
                f"model.hidden_size ({self.hidden_size}) must equal model.embedding_size "
                f"({self.embedding_size}) for {self.name}: it composes the word vectors"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")


def build_composition(cfg: TreeModelConfig) -> Composition:
    if cfg.name == "recnn":
        return RecursiveComposition(cfg.embedding_size)
    if cfg.name == "rntn":
        return TensorComposition(cfg.embedding_size, cfg.tensor_std)
    return BinaryTreeLSTMComposition(cfg.embedding_size, cfg.hidden_size)


class TreeSentimentModel(nn.Module):
    """Embeddings, a composition over the tree, and a softmax classifier at every node."""

    def __init__(self, cfg: TreeModelConfig, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size)
        nn.init.uniform_(self.embedding.weight, -cfg.embedding_init, cfg.embedding_init)
        self.composition = build_composition(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden_size, num_classes)

    def states(self, structure: TreeStructure) -> Tensor:
        """h at every node (N, H), in node-id order."""
        leaf_inputs = self.embedding(structure.words)  # (L, E)
        encode = encode_levels if self.cfg.evaluation == "levels" else encode_nodes
        return encode(self.composition, leaf_inputs, structure)[0]

    def node_logits(self, batch: TreeBatch) -> Tensor:
        """(N, C) class scores at every node."""
        return self.output(self.dropout(self.states(batch.structure)))

    def loss(self, batch: TreeBatch) -> LossOutput:
        logits = self.node_logits(batch)
        n = int((batch.labels != IGNORE).sum())
        loss = F.cross_entropy(logits, batch.labels, ignore_index=IGNORE, reduction="sum")
        return LossOutput(loss / max(n, 1), n)

    def predict(self, batch: TreeBatch) -> NodePredictions:
        probs = F.softmax(self.node_logits(batch), dim=-1)
        return NodePredictions(batch.structure, probs, batch.labels)


def bracketed(
    structure: TreeStructure, labels: Sequence[int], tokens: Sequence[Sequence[str]]
) -> list[str]:
    """Each tree of ``structure`` as a bracketed string with ``labels[node]`` at every node;
    ``tokens[b]`` are tree b's words, left to right."""
    children = structure.children()
    owner = structure.tree.tolist()
    words: dict[int, str] = {}
    position = [0] * structure.num_trees
    for leaf in range(structure.num_leaves):
        b = owner[leaf]
        words[leaf] = tokens[b][position[b]]
        position[b] += 1

    def text(node: int) -> str:
        pair = children[node]
        if pair is None:
            return f"({labels[node]} {words[node]})"
        return f"({labels[node]} {text(pair[0])} {text(pair[1])})"

    return [text(root) for root in structure.roots.tolist()]

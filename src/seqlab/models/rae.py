"""Semi-supervised recursive autoencoder for sentiment (Socher et al., 2011).

.. code-block:: text

    x = E[w]                                       (B, T, H)  word vectors
    tree = greedy_merge(RAE, x)                    no gradient: the structure only
    p at every inner node, level by level          (N, H)     (nn/rae.py, nn/tree.py)
    at each inner node: E = alpha E_rec + (1 - alpha) CE(softmax(W_n p), sentence label)
    sentence: logits = W_s [p_root; mean of all node vectors] + b_s          (B, C)
    loss = sum over inner nodes of E / B  +  CE(sentence logits, label)

Socher et al. train a separate logistic regression on [root; mean of the nodes] after the
RAE; here that classifier is trained jointly (same features, one run). The model reads
plain sentences (:func:`collate_sentences`), so it runs on MR, which has no parse trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.data.batching import Padded, pad_batch
from seqlab.errors import ConfigError
from seqlab.models.tree import IGNORE, NodePredictions, SentimentExample
from seqlab.nn.rae import RecursiveAutoencoder, greedy_merge, subtree_sizes
from seqlab.nn.tree import Node, TreeStructure, build_structure, encode_levels


@dataclass(frozen=True)
class SentenceBatch:
    words: Padded  # ids (B, T), lengths (B,), mask (B, T)
    labels: Tensor  # (B,) sentence label, IGNORE where unknown

    def to(self, device: torch.device | str) -> SentenceBatch:
        return SentenceBatch(self.words.to(device), self.labels.to(device))


def collate_sentences(examples: Sequence[SentimentExample]) -> SentenceBatch:
    """Padded word ids and sentence labels; a parse tree, if any, is not used."""
    words = pad_batch([e.ids for e in examples], 0)
    return SentenceBatch(words, torch.tensor([e.label for e in examples], dtype=torch.long))


@dataclass(frozen=True)
class RAEConfig:
    name: str = "rae"
    embedding_size: int = 50
    alpha: float = 0.2
    """Weight of the reconstruction error against the node cross-entropy."""
    embedding_init: float = 0.05
    """Word vectors start U(-a, a)."""
    dropout: float = 0.0
    """Dropout on the sentence features before the sentence classifier."""

    def validate(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError("model.alpha must be in [0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")


@dataclass(frozen=True)
class RAEForward:
    structure: TreeStructure
    states: Tensor  # (N, H)
    reconstruction: Tensor  # (N - L,) E_rec of each inner node
    sentence_logits: Tensor  # (B, C)


class RAESentimentModel(nn.Module):
    def __init__(self, cfg: RAEConfig, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        size = cfg.embedding_size
        self.embedding = nn.Embedding(vocab_size, size)
        nn.init.uniform_(self.embedding.weight, -cfg.embedding_init, cfg.embedding_init)
        self.rae = RecursiveAutoencoder(size)
        self.node_output = nn.Linear(size, num_classes)
        self.dropout = nn.Dropout(cfg.dropout)
        self.sentence_output = nn.Linear(2 * size, num_classes)

    def trees(self, words: Padded) -> TreeStructure:
        """The greedy RAE tree of every sentence, flattened (word ids at the leaves)."""
        leaves = self.embedding(words.ids)  # (B, T, H)
        merges = greedy_merge(self.rae, leaves.detach(), words.lengths)
        ids = words.ids.tolist()
        lists: list[list[Node]] = [
            [ids[b][entry] if isinstance(entry, int) else entry for entry in tree]
            for b, tree in enumerate(merges)
        ]
        structure, _ = build_structure(lists)
        return structure.to(words.ids.device)

    def forward(self, batch: SentenceBatch) -> RAEForward:
        structure = self.trees(batch.words)
        states = encode_levels(self.rae, self.embedding(structure.words), structure)[0]
        offset = structure.num_leaves
        sizes = subtree_sizes(structure)
        left, right = structure.left, structure.right
        reconstruction = self.rae.reconstruction_error(
            states[left], states[right], states[offset:], sizes[left], sizes[right]
        )
        batch_size = structure.num_trees
        total = states.new_zeros(batch_size, states.size(1)).index_add(0, structure.tree, states)
        count = torch.bincount(structure.tree, minlength=batch_size).unsqueeze(1)
        features = torch.cat([states[structure.roots], total / count], dim=-1)  # (B, 2H)
        logits = self.sentence_output(self.dropout(features))
        return RAEForward(structure, states, reconstruction, logits)

    def loss(self, batch: SentenceBatch) -> LossOutput:
        out = self(batch)
        offset = out.structure.num_leaves
        inner_labels = batch.labels[out.structure.tree[offset:]]  # (N - L,)
        node_ce = F.cross_entropy(
            self.node_output(out.states[offset:]),
            inner_labels,
            ignore_index=IGNORE,
            reduction="sum",
        )
        alpha = self.cfg.alpha
        node_error = alpha * out.reconstruction.sum() + (1 - alpha) * node_ce
        n = int((batch.labels != IGNORE).sum())
        sentence_ce = F.cross_entropy(out.sentence_logits, batch.labels, ignore_index=IGNORE)
        return LossOutput(node_error / out.structure.num_trees + sentence_ce, n)

    def predict(self, batch: SentenceBatch) -> NodePredictions:
        """Node-level sentiment at every node of the greedy tree; the root's row is the
        sentence classifier's prediction, the only node with a gold label."""
        out = self(batch)
        probs = F.softmax(self.node_output(out.states), dim=-1)
        roots = out.structure.roots
        probs[roots] = F.softmax(out.sentence_logits, dim=-1)
        gold = torch.full_like(out.structure.tree, IGNORE)
        gold[roots] = batch.labels
        return NodePredictions(out.structure, probs, gold)

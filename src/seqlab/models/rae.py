"""Semi-supervised recursive autoencoder for sentiment (Socher et al., 2011).

.. code-block:: text

    x = E[w]                                       (B, T, H)  word vectors
    tree = greedy_merge(RAE, x)                    no gradient: the structure only
    p at every inner node, level by level          (N, H)     (nn/rae.py, nn/tree.py)
    at each inner node: E = alpha E_rec + (1 - alpha) CE(softmax(W_n p), sentence label)
    sentence: logits = W_s [p_root; mean of all node vectors] + b_s          (B, C)
    loss = sum over inner nodes of E / B  +  CE(sentence logits, label)   (classifier: joint)
    loss = sum over inner nodes of E / B                                   (classifier: refit)

Socher et al. train a separate logistic regression on [root; mean of the nodes] after the
RAE. ``model.classifier: joint`` trains that classifier with the rest (its cross-entropy in
the loss); ``refit`` leaves it out of the loss and fits it apart, as the paper does: at each
evaluation, a logistic regression on the frozen features of the whole training set
(L-BFGS, L2 ``model.refit_l2``; ``refit``, the :class:`~seqlab.contract.RefitsOnTrainingData`
protocol). The model reads plain sentences (:func:`collate_sentences`), so it runs on MR,
which has no parse trees.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

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
    classifier: Literal["joint", "refit"] = "joint"
    """``joint``: the sentence classifier trains with the rest; ``refit``: it is a logistic
    regression fitted on the frozen features of the training set at each evaluation
    (Socher et al. 2011), and the loss is the node objective alone."""
    refit_l2: float = 1e-6
    """``refit``: L2 weight of the logistic regression (Socher et al.'s code: 1e-6)."""
    refit_iterations: int = 1000
    """``refit``: L-BFGS iterations at most (Socher et al.'s code: 1000)."""

    def validate(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError("model.alpha must be in [0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")
        if self.classifier not in ("joint", "refit"):
            raise ConfigError(f"model.classifier must be joint or refit, got {self.classifier!r}")
        if self.refit_l2 < 0 or self.refit_iterations < 1:
            raise ConfigError("model.refit_l2 must be >= 0 and model.refit_iterations >= 1")


@dataclass(frozen=True)
class RAEForward:
    structure: TreeStructure
    states: Tensor  # (N, H)
    reconstruction: Tensor  # (N - L,) E_rec of each inner node
    features: Tensor  # (B, 2H) [root; mean of the node vectors]
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
        if cfg.classifier == "refit":  # fitted by `refit`, not by the optimizer
            self.sentence_output.requires_grad_(False)

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
        return RAEForward(structure, states, reconstruction, features, logits)

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
        loss = node_error / out.structure.num_trees
        if self.cfg.classifier == "joint":
            loss = loss + F.cross_entropy(out.sentence_logits, batch.labels, ignore_index=IGNORE)
        return LossOutput(loss, n)

    def refit(self, batches: Iterable[SentenceBatch]) -> None:
        """``classifier: refit``: fit the sentence classifier, a logistic regression on the
        frozen features [root; mean] of ``batches`` (the training set), by full-batch
        L-BFGS with L2 ``refit_l2`` on its weight; ``joint``: nothing to do."""
        if self.cfg.classifier != "refit":
            return
        was_training = self.training
        self.eval()
        with torch.no_grad():
            parts = [(self(batch).features, batch.labels) for batch in batches]
        self.train(was_training)
        features = torch.cat([f for f, _ in parts])  # (N, 2H)
        labels = torch.cat([y for _, y in parts])  # (N,)
        keep = labels != IGNORE
        features, labels = features[keep], labels[keep]
        classifier = copy.deepcopy(self.sentence_output).requires_grad_(True)  # warm start
        optimizer = torch.optim.LBFGS(
            classifier.parameters(),
            max_iter=self.cfg.refit_iterations,
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def objective() -> Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(classifier(features), labels)
            loss = loss + 0.5 * self.cfg.refit_l2 * classifier.weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(objective)
        with torch.no_grad():
            self.sentence_output.load_state_dict(classifier.state_dict())

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

"""Sentiment over trees (task ``tree_sentiment``): SST with a label at every phrase, and MR.

Every model of this task predicts a sentiment distribution at each node of a binary tree:
the tree models (recursive NN, RNTN, Tree-LSTM; models/tree.py) over SST's parse trees, the
recursive autoencoder (models/rae.py) over the tree it builds itself, so it also runs on MR,
which has no trees. The task hands examples (words, ids, tree if any, label) to the model
spec's own ``collate``; it never asks which model it has.

* ``dataset: sst``: ``labels: fine`` trains on the 5 classes at every node; ``binary`` maps
  0-1 to negative, 3-4 to positive and leaves neutral nodes unlabelled (sentences with a
  neutral root are left out of the binary splits, as for SST-2).
* ``dataset: rt_polarity``: MR (Pang & Lee, 2005), sentence labels only; ``eval.folds: 10``
  for 10-fold cross-validation (splits as in ``classify``).

Metrics (``val_``/``test_`` prefixed): ``root_fine_acc`` and ``all_fine_acc`` (5 classes,
at the root and over every phrase) with fine labels; ``root_binary_acc`` and
``all_binary_acc`` (non-neutral nodes; a 5-class model's binary prediction is the larger of
P(0)+P(1) and P(3)+P(4)); ``acc`` is the root accuracy in the trained label scheme.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, RefitsOnTrainingData, contract
from seqlab.data.batching import bucket_batches
from seqlab.data.readers import Tree, parse_tree, read_polarity, read_trees
from seqlab.data.sources import resolve
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError
from seqlab.models.rae import RAEConfig, RAESentimentModel, collate_sentences
from seqlab.models.tree import (
    IGNORE,
    NodePredictions,
    SentimentExample,
    TreeModelConfig,
    TreeSentimentModel,
    bracketed,
    collate_trees,
)
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask, load_labels, save_data_report, save_labels
from seqlab.tasks.bow_classify import split_indices

FINE_LABELS = ["very negative", "negative", "neutral", "positive", "very positive"]
BINARY_LABELS = ["negative", "positive"]
Row = tuple[list[str], Tree | None, int]
"""(tokens, tree or None, sentence label) of one sentence as read"""


@dataclass(frozen=True)
class TreeSentimentDataConfig:
    dataset: str = "sst"
    """``sst`` (parse trees, a label at every node) or ``rt_polarity`` (MR, no trees)."""
    labels: Literal["fine", "binary"] = "fine"
    lowercase: bool = True
    min_count: int = 1
    encoding: str = "cp1252"
    """MR's encoding."""
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 1234
    eval_batch_size: int = 256

    def validate(self) -> None:
        if self.dataset not in ("sst", "rt_polarity"):
            raise ConfigError(f"data.dataset {self.dataset!r}: expected sst or rt_polarity")
        if self.dataset == "rt_polarity" and self.labels != "binary":
            raise ConfigError("MR has binary labels: set data.labels: binary")
        if self.eval_batch_size < 1:
            raise ConfigError("data.eval_batch_size must be >= 1")


@dataclass
class TreeSentimentData:
    vocab: Vocab
    labels: list[str]
    splits: dict[str, list[SentimentExample]]
    report: dict[str, int]


def _tree_model(cfg: ExperimentConfig, data: TreeSentimentData) -> nn.Module:
    return TreeSentimentModel(cfg.model, len(data.vocab), len(data.labels))


TREE_SENTIMENT_MODELS: Registry[ModelSpec[TreeSentimentData]] = Registry("tree sentiment model")
for _name in ("recnn", "rntn", "treelstm"):
    TREE_SENTIMENT_MODELS.register(_name, ModelSpec(TreeModelConfig, _tree_model, collate_trees))
TREE_SENTIMENT_MODELS.register(
    "rae",
    ModelSpec(
        RAEConfig,
        lambda cfg, data: RAESentimentModel(cfg.model, len(data.vocab), len(data.labels)),
        collate_sentences,
    ),
)


def relabel(tree: Tree, scheme: str) -> Tree:
    """``tree`` with its labels in ``scheme``: fine keeps 0-4; binary 0-1 -> 0, 3-4 -> 1,
    2 -> IGNORE; ``none`` marks every node IGNORE (input to predict)."""
    if scheme == "fine":
        label = tree.label
    elif scheme == "binary":
        label = IGNORE if tree.label == 2 else int(tree.label > 2)
    else:
        label = IGNORE
    return Tree(label, tuple(relabel(c, scheme) for c in tree.children), tree.word)


def _lower(tree: Tree) -> Tree:
    word = tree.word.lower() if tree.word is not None else None
    return Tree(tree.label, tuple(_lower(c) for c in tree.children), word)


class TreeSentimentTask(TrainedTask[TreeSentimentData]):
    name = "tree_sentiment"
    data_config = TreeSentimentDataConfig
    models = TREE_SENTIMENT_MODELS
    default_model = "rntn"
    supports_folds = True

    # ---------------------------------------------------------------- data

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> TreeSentimentData:
        dcfg: TreeSentimentDataConfig = cfg.data
        report: dict[str, int] = {}
        raw: dict[str, list[Row]] = {}
        if dcfg.dataset == "sst":
            if cfg.eval.folds > 1:
                raise ConfigError("SST has fixed train/dev/test splits; set eval.folds: 1")
            for split, role in (("train", "train"), ("val", "dev"), ("test", "test")):
                rows: list[Row] = []
                for tree in read_trees(resolve("sst", role), binary=True):
                    tree = relabel(_lower(tree) if dcfg.lowercase else tree, dcfg.labels)
                    if tree.label != IGNORE:
                        rows.append((tree.leaves(), tree, tree.label))
                report[f"{split}_sentences"] = len(rows)
                raw[split] = rows
            label_names = FINE_LABELS if dcfg.labels == "fine" else BINARY_LABELS
        else:
            examples, skipped = read_polarity(
                resolve("rt_polarity", "pos"),
                resolve("rt_polarity", "neg"),
                encoding=dcfg.encoding,
            )
            report["empty_lines_left_out"] = skipped
            idx = split_indices(
                len(examples),
                cfg.eval.folds,
                fold,
                dcfg.val_fraction,
                dcfg.test_fraction,
                dcfg.split_seed,
                [label for _, label in examples],
            )
            label_names = BINARY_LABELS
            for split, ids in idx.items():
                rows = []  # of this split
                for i in ids:
                    text, label = examples[i]
                    tokens = (text.lower() if dcfg.lowercase else text).split()
                    rows.append((tokens, None, int(label)))
                raw[split] = rows
                report[f"{split}_sentences"] = len(rows)
        if train:
            counts = Counter(w for tokens, _, _ in raw["train"] for w in tokens)
            vocab = Vocab.from_counter(counts, min_count=dcfg.min_count)
            vocab.save(RunDir(run_dir).vocab)
            save_labels(run_dir, label_names)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
            label_names = load_labels(run_dir, self.name)
        if train:  # a loaded run (eval, serve) leaves its run dir as it is
            save_data_report(run_dir, report)
        splits = {
            split: [self.example(vocab, tokens, tree, label) for tokens, tree, label in rows]
            for split, rows in raw.items()
            if rows
        }
        return TreeSentimentData(vocab, label_names, splits, report)

    @staticmethod
    def example(vocab: Vocab, tokens: list[str], tree: Tree | None, label: int) -> SentimentExample:
        # an empty sentence is one <unk>, so that every example has a node
        ids = vocab.encode(tokens) if tokens else [vocab.unk_index]
        return SentimentExample(tokens or [vocab.itos[vocab.unk_index]], ids, tree, label)

    def splits(self, data: TreeSentimentData) -> list[str]:
        return [s for s in ("val", "test") if s in data.splits]

    def collate(self, cfg: ExperimentConfig) -> Callable[[list[SentimentExample]], Any]:
        collate = self.models.get(cfg.model.name).collate
        if collate is None:
            raise ConfigError(f"model {cfg.model.name!r} has no batching for {self.name}")
        return collate

    # ---------------------------------------------------------------- training

    def train_batches(
        self, cfg: ExperimentConfig, data: TreeSentimentData, epoch: int
    ) -> Iterator[Any]:
        examples = data.splits["train"]
        collate = self.collate(cfg)
        # sentences of similar length together: fewer levels (and greedy merge steps) per
        # batch; batches in random order
        for chosen in bucket_batches(
            [len(e.ids) for e in examples],
            cfg.trainer.batch_size,
            shuffle=True,
            seed=cfg.trainer.seed * 100_003 + epoch,
        ):
            yield collate([examples[i] for i in chosen]).to(cfg.trainer.device)

    def evaluate_in_training(
        self, cfg: ExperimentConfig, model: nn.Module, data: TreeSentimentData
    ) -> dict[str, float]:
        """Validation; a model with weights fitted apart (the RAE's ``classifier: refit``)
        first refits them on the training set, so the kept checkpoint holds them."""
        if isinstance(model, RefitsOnTrainingData):
            model.refit(self.eval_batches(cfg, data.splits["train"]))
        return self.evaluate(cfg, model, data, "val")

    # ---------------------------------------------------------------- use

    def eval_batches(
        self, cfg: ExperimentConfig, examples: Sequence[SentimentExample]
    ) -> Iterator[Any]:
        """``examples`` in order, ``data.eval_batch_size`` a batch, on the run's device."""
        dcfg: TreeSentimentDataConfig = cfg.data
        collate = self.collate(cfg)
        for start in range(0, len(examples), dcfg.eval_batch_size):
            batch = collate(list(examples[start : start + dcfg.eval_batch_size]))
            yield batch.to(cfg.trainer.device)

    def node_predictions(
        self, cfg: ExperimentConfig, model: nn.Module, examples: Sequence[SentimentExample]
    ) -> Iterator[tuple[Any, NodePredictions]]:
        for batch in self.eval_batches(cfg, examples):
            yield batch, contract(model).predict(batch)

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: TreeSentimentData, split: str
    ) -> dict[str, float]:
        examples = data.splits[split]
        was_training = model.training
        model.eval()
        loss_sum, loss_n = 0.0, 0
        counts: Counter[str] = Counter()
        with torch.no_grad():
            for batch, pred in self.node_predictions(cfg, model, examples):
                out = contract(model).loss(batch)
                loss_sum += float(out.loss) * out.n
                loss_n += out.n
                counts.update(node_counts(pred))
        model.train(was_training)
        fine = len(data.labels) == 5
        metrics = {f"{split}_loss": loss_sum / max(loss_n, 1)}
        for key in ("root_fine", "all_fine", "root_binary", "all_binary"):
            if counts[f"{key}_n"] and (fine or "fine" not in key):
                metrics[f"{split}_{key}_acc"] = (
                    100.0 * counts[f"{key}_correct"] / counts[f"{key}_n"]
                )
        has_phrases = counts["all_binary_n"] > counts["root_binary_n"]
        if not has_phrases:  # a model that predicts at the root only (the RAE)
            metrics.pop(f"{split}_all_binary_acc", None)
            metrics.pop(f"{split}_all_fine_acc", None)
        metrics[f"{split}_acc"] = metrics[f"{split}_root_{'fine' if fine else 'binary'}_acc"]
        return metrics

    def predict(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: TreeSentimentData,
        lines: Iterable[str],
    ) -> Iterator[str]:
        """``label<TAB>probability<TAB>tree`` per line: the tree with the predicted label
        at every node. A line starting with '(' is a bracketed tree (its labels are
        ignored); any other line is a plain sentence (whitespace tokens)."""
        dcfg: TreeSentimentDataConfig = cfg.data
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text:
                continue
            tree: Tree | None = None
            if text.startswith("("):
                tree = relabel(parse_tree(text, "<input>", number, binary=True), "none")
                tree = _lower(tree) if dcfg.lowercase else tree
                tokens = tree.leaves()
            else:
                tokens = (text.lower() if dcfg.lowercase else text).split()
            example = self.example(data.vocab, tokens, tree, IGNORE)
            with torch.no_grad():
                _, pred = next(self.node_predictions(cfg, model, [example]))
            labels = pred.probs.argmax(-1).tolist()
            root = int(pred.structure.roots[0])
            label = labels[root]
            shown = bracketed(pred.structure, labels, [example.tokens])[0]
            yield f"{data.labels[label]}\t{float(pred.probs[root, label]):.4f}\t{shown}"


def node_counts(pred: NodePredictions) -> Counter[str]:
    """Correct and total counts at the roots and over all labelled nodes, fine (5 classes)
    and binary."""
    probs, gold = pred.probs, pred.gold
    is_root = torch.zeros_like(gold, dtype=torch.bool)
    is_root[pred.structure.roots] = True
    counts: Counter[str] = Counter()
    labelled = gold != IGNORE
    if probs.size(1) == 5:
        fine_hit = probs.argmax(-1) == gold
        neg, pos = probs[:, :2].sum(-1), probs[:, 3:].sum(-1)
        binary_pred = (pos > neg).long()
        binary_gold = (gold > 2).long()
        binary_ok = labelled & (gold != 2)
        _count(counts, "fine", fine_hit, labelled, is_root)
        _count(counts, "binary", binary_pred == binary_gold, binary_ok, is_root)
    else:
        _count(counts, "binary", probs.argmax(-1) == gold, labelled, is_root)
    return counts


def _count(counts: Counter[str], scheme: str, hit: Tensor, mask: Tensor, is_root: Tensor) -> None:
    for where_, region in (("all", mask), ("root", mask & is_root)):
        counts[f"{where_}_{scheme}_n"] += int(region.sum())
        counts[f"{where_}_{scheme}_correct"] += int((hit & region).sum())

"""Sentence classification from bags of words (MR polarity, or any labelled-lines file).

Splits: with ``eval.folds = k > 1`` the data is cut into k folds stratified by label
(deterministic by ``data.split_seed``: each fold holds floor(n_c / k) or ceil(n_c / k) of
the n_c examples of every class c); fold i is the test set, and ``data.val_fraction`` of
the remaining examples is held out as validation for model selection. With ``folds = 1``
the data is split once into train / val / test by ``data.val_fraction`` and
``data.test_fraction``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, contract, move_to
from seqlab.data.readers import read_labelled_lines, read_polarity
from seqlab.data.sources import resolve
from seqlab.data.tokenize import build_tokenizer
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.bow import (
    Adaline,
    AdalineConfig,
    BowBatch,
    BowMLP,
    LogisticRegression,
    LogRegConfig,
    MLPConfig,
    Perceptron,
    PerceptronConfig,
)
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask, load_labels, save_labels
from seqlab.train.device import module_device


@dataclass(frozen=True)
class BowDataConfig:
    dataset: str = "rt_polarity"
    """``rt_polarity`` (MR, cp1252), or a path to a labelled-lines file ``label<TAB>text``."""
    encoding: str = "cp1252"
    tokenizer: Literal["whitespace", "word"] = "whitespace"
    lowercase: bool = True
    features: Literal["binary", "count"] = "binary"
    """``binary``: word presence (Pang & Lee 2002 found it better than counts)."""
    min_count: int = 1
    max_size: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 1234

    def validate(self) -> None:
        if not 0.0 < self.val_fraction < 0.5 or not 0.0 <= self.test_fraction < 0.5:
            raise ConfigError("data.val_fraction must be in (0, 0.5), test_fraction in [0, 0.5)")


def _linear(model: type[nn.Module]) -> Callable[[ExperimentConfig, BowData], nn.Module]:
    """Build the linear model ``model`` over the vocabulary, one output per label."""
    return lambda cfg, data: model(len(data.vocab), len(data.labels))


BOW_MODELS: Registry[ModelSpec[BowData]] = Registry("bow model")
BOW_MODELS.register("perceptron", ModelSpec(PerceptronConfig, _linear(Perceptron)))
BOW_MODELS.register("adaline", ModelSpec(AdalineConfig, _linear(Adaline)))
BOW_MODELS.register("logreg", ModelSpec(LogRegConfig, _linear(LogisticRegression)))
BOW_MODELS.register(
    "mlp",
    ModelSpec(MLPConfig, lambda cfg, data: BowMLP(len(data.vocab), len(data.labels), cfg.model)),
)


@dataclass
class BowData:
    vocab: Vocab
    labels: list[str]
    splits: dict[str, tuple[list[list[int]], list[int]]]
    """split -> (token ids per example, label index per example)"""
    features: str
    skipped: int


def load_examples(cfg: BowDataConfig) -> tuple[list[str], list[str], int]:
    """(texts, labels, number of skipped empty lines)."""
    if cfg.dataset == "rt_polarity":
        examples, skipped = read_polarity(
            resolve("rt_polarity", "pos"), resolve("rt_polarity", "neg"), encoding=cfg.encoding
        )
        return [t for t, _ in examples], ["pos" if y == 1 else "neg" for _, y in examples], skipped
    pairs = list(read_labelled_lines(resolve(cfg.dataset), encoding=cfg.encoding))
    if not pairs:
        raise DataError(f"{cfg.dataset}: empty corpus (no labelled lines)")
    return [text for _, text in pairs], [label for label, _ in pairs], 0


def stratified_folds(labels: Sequence[Hashable], folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` disjoint index arrays covering ``range(len(labels))``, stratified by label.

    The examples, in a random order by ``seed``, are grouped by class (classes in sorted
    order) and dealt to the folds in turn, so every fold holds floor(n_c / k) or
    ceil(n_c / k) of the n_c examples of class c and the fold sizes differ by at most one.
    Within a fold the examples keep the random order (not grouped by class).
    """
    n = len(labels)
    if folds > n:
        raise ConfigError(
            f"eval.folds = {folds} is more than the {n} examples of the data: every fold "
            "needs at least one test example"
        )
    counts = Counter(labels)
    smallest, n_smallest = min(counts.items(), key=lambda item: (item[1], str(item[0])))
    if folds > n_smallest:
        raise ConfigError(
            f"eval.folds = {folds} is more than the {n_smallest} examples of label "
            f"{smallest!r}: stratified folds need at least one example of every label per fold"
        )
    order = np.random.default_rng(seed).permutation(n)  # (N,)
    rank = {label: i for i, label in enumerate(sorted(counts, key=str))}
    by_class = order[np.argsort([rank[labels[i]] for i in order], kind="stable")]  # (N,)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[by_class] = np.arange(n) % folds
    return [order[fold_of[order] == f] for f in range(folds)]


def split_indices(
    n: int,
    folds: int,
    fold: int | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    labels: Sequence[Hashable] | None = None,
) -> dict[str, np.ndarray]:
    """Deterministic train/val/test index arrays (fold ``fold`` of ``folds`` is test).

    With ``labels`` (one per example) the k folds are stratified (:func:`stratified_folds`);
    without, they are contiguous runs of a random order. ``folds = 1`` ignores ``labels``.
    """
    order = np.random.default_rng(seed).permutation(n)
    if folds > 1:
        if labels is not None and len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} examples")
        if fold is None or not 0 <= fold < folds:
            raise ConfigError(f"fold must be in 0..{folds - 1}")
        if labels is not None:
            parts = stratified_folds(labels, folds, seed)
        elif folds > n:
            raise ConfigError(
                f"eval.folds = {folds} is more than the {n} examples of the data: every fold "
                "needs at least one test example"
            )
        else:
            parts = np.array_split(order, folds)
        test = parts[fold]
        rest = np.concatenate([p for i, p in enumerate(parts) if i != fold])
    else:
        n_test = int(round(n * test_fraction))
        test, rest = order[:n_test], order[n_test:]
    n_val = max(1, int(round(len(rest) * val_fraction)))
    if n_val >= len(rest):
        raise ConfigError(
            f"{n} examples leave no training example after the test ({len(test)}) and "
            f"validation ({n_val}) splits; lower eval.folds or the split fractions"
        )
    return {"train": rest[n_val:], "val": rest[:n_val], "test": test}


class BowClassifyTask(TrainedTask[BowData]):
    name = "bow_classify"
    data_config = BowDataConfig
    models = BOW_MODELS
    default_model = "logreg"
    supports_folds = True

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> BowData:
        dcfg: BowDataConfig = cfg.data
        texts, labels, skipped = load_examples(dcfg)
        tokenizer = build_tokenizer(dcfg.tokenizer)
        tokens = [tokenizer.encode(t.lower() if dcfg.lowercase else t) for t in texts]
        idx = split_indices(
            len(texts),
            cfg.eval.folds,
            fold,
            dcfg.val_fraction,
            dcfg.test_fraction,
            dcfg.split_seed,
            labels,
        )
        if train:
            vocab = Vocab.build(
                (tokens[i] for i in idx["train"]),
                min_count=dcfg.min_count,
                max_size=dcfg.max_size,
            )
            label_names = sorted(set(labels))
            vocab.save(RunDir(run_dir).vocab)
            save_labels(run_dir, label_names)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
            label_names = load_labels(run_dir, self.name)
        label_index = {name: i for i, name in enumerate(label_names)}
        unknown = sorted(set(labels) - set(label_index))
        if unknown:
            raise DataError(
                f"{dcfg.dataset}: labels {unknown} were not seen in training "
                f"(the run knows {label_names})"
            )
        splits = {
            name: ([vocab.encode(tokens[i]) for i in ids], [label_index[labels[i]] for i in ids])
            for name, ids in idx.items()
            if len(ids)
        }
        return BowData(vocab, label_names, splits, dcfg.features, skipped)

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> BowData:
        """With ``data_path``: evaluate every line of that labelled-lines file as ``test``."""
        if data_path is None:
            return self.setup(cfg, run_dir, train=False)
        dcfg: BowDataConfig = cfg.data
        other = dataclasses.replace(dcfg, dataset=data_path, encoding="utf-8")
        texts, labels, skipped = load_examples(other)
        vocab = Vocab.load(RunDir(run_dir).vocab)
        label_names = load_labels(run_dir, self.name)
        unknown = sorted(set(labels) - set(label_names))
        if unknown:
            raise DataError(
                f"{data_path}: labels {unknown} are not known to this run (it has {label_names})"
            )
        tokenizer = build_tokenizer(dcfg.tokenizer)
        seqs = [vocab.encode(tokenizer.encode(t.lower() if dcfg.lowercase else t)) for t in texts]
        index = {name: i for i, name in enumerate(label_names)}
        return BowData(
            vocab, label_names, {"test": (seqs, [index[y] for y in labels])}, dcfg.features, skipped
        )

    def splits(self, data: BowData) -> list[str]:
        return [s for s in ("val", "test") if s in data.splits]

    def train_batches(self, cfg: ExperimentConfig, data: BowData, epoch: int) -> Iterator[BowBatch]:
        seqs, labels = data.splits["train"]
        rng = np.random.default_rng([cfg.trainer.seed, epoch])
        order = rng.permutation(len(seqs))
        size = cfg.trainer.batch_size
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            yield make_batch([seqs[i] for i in chosen], [labels[i] for i in chosen], data.features)

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: BowData, split: str
    ) -> dict[str, float]:
        seqs, labels = data.splits[split]
        was_training = model.training
        model.eval()
        correct, loss_sum = 0, 0.0
        device = module_device(model)
        with torch.no_grad():
            for start in range(0, len(seqs), 1000):
                batch = make_batch(
                    seqs[start : start + 1000], labels[start : start + 1000], data.features
                )
                batch = move_to(batch, device)
                out = contract(model).loss(batch)
                loss_sum += float(out.loss) * out.n
                correct += int((contract(model).predict(batch) == batch.labels).sum())
        model.train(was_training)
        return {f"{split}_loss": loss_sum / len(seqs), f"{split}_acc": 100.0 * correct / len(seqs)}

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: BowData, lines: Iterable[str]
    ) -> Iterator[str]:
        dcfg: BowDataConfig = cfg.data
        tokenizer = build_tokenizer(dcfg.tokenizer)
        for line in lines:
            text = line.rstrip("\n")
            ids = data.vocab.encode(tokenizer.encode(text.lower() if dcfg.lowercase else text))
            batch = move_to(make_batch([ids], [0], data.features), module_device(model))
            with torch.no_grad():
                probs = F.softmax(cast(Any, model).logits(batch), dim=-1)[0]
            label = int(probs.argmax())
            yield f"{data.labels[label]}\t{float(probs[label]):.4f}\t{text}"


def make_batch(seqs: Sequence[Sequence[int]], labels: Sequence[int], features: str) -> BowBatch:
    """Bags in ``nn.EmbeddingBag`` layout; ``binary`` features keep each id once."""
    ids: list[int] = []
    weights: list[float] = []
    offsets: list[int] = []
    for seq in seqs:
        offsets.append(len(ids))
        if features == "binary":
            unique = sorted(set(seq))
            ids.extend(unique)
            weights.extend([1.0] * len(unique))
        else:
            counts: dict[int, int] = {}
            for token in seq:
                counts[token] = counts.get(token, 0) + 1
            ids.extend(counts)
            weights.extend(float(c) for c in counts.values())
    return BowBatch(
        ids=torch.tensor(ids, dtype=torch.long),
        offsets=torch.tensor(offsets, dtype=torch.long),
        weights=torch.tensor(weights, dtype=torch.float32),
        labels=torch.tensor(labels, dtype=torch.long),
    )

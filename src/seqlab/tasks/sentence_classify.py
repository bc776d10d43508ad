"""Sentence classification (task ``classify``): SST (5-class or binary) and MR with folds.

* ``dataset: sst``: the PTB-style trees of the Stanford Sentiment Treebank. ``labels:
  fine`` keeps the 5 classes; ``binary`` maps 0-1 to negative, 3-4 to positive and leaves
  out neutral (2) sentences and phrases. With ``phrases: true`` training uses every
  labelled phrase of the training trees (unique phrase texts, as Kim (2014) did) instead of
  the sentences only; dev and test are always whole sentences.
* ``dataset: rt_polarity``: MR (Pang & Lee, 2005), with ``eval.folds = 10`` for 10-fold
  cross-validation (splits as in ``bow_classify``); empty lines are left out and counted.

Counts of what was read, kept and left out are written to ``RUN_DIR/data_report.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, contract, move_to
from seqlab.data.batching import BUCKET_SIZE_MULTIPLIER, bucket_batches, pad_batch
from seqlab.data.curriculum import CurriculumConfig, CurriculumSampler
from seqlab.data.readers import Tree, read_polarity, read_trees
from seqlab.data.sources import resolve
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.classifier import (
    ClassifyBatch,
    RNNClassifier,
    RNNClassifierConfig,
    SentenceClassifier,
    SoftTargets,
    TextCNN,
    TextCNNConfig,
)
from seqlab.nn.distill import UNLABELLED
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask, load_labels, save_data_report, save_labels
from seqlab.tasks.bow_classify import split_indices
from seqlab.tasks.distill import check_teachers, teacher_probs
from seqlab.tasks.transfer import start_from
from seqlab.train.device import module_device

FINE_LABELS = ["very negative", "negative", "neutral", "positive", "very positive"]
BINARY_LABELS = ["negative", "positive"]


@dataclass(frozen=True)
class ClassifyDataConfig:
    dataset: str = "sst"
    """``sst`` (trees), ``rt_polarity`` (MR), or a labelled-lines file ``label<TAB>text``."""
    labels: Literal["fine", "binary"] = "binary"
    phrases: bool = False
    lowercase: bool = True
    min_count: int = 1
    max_length: int = 100
    """Longer sentences are cut to this many words (counted in data_report.json)."""
    encoding: str = "cp1252"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 1234
    train_fraction: float = 1.0
    """Train on this fraction of the training examples (a seeded subset by ``split_seed``;
    a smaller fraction's subset is part of a larger one's): learning curves, few labels."""
    vocab_from: Literal["labelled", "train_text"] = "labelled"
    """Which sentences make the vocabulary: ``labelled``, the training examples the model
    learns from; ``train_text``, the text of every training sentence, those whose labels
    ``train_fraction`` leaves out too (never dev or test). With few labels and a transfer
    source (``model.init_from``), ``train_text`` keeps the source's vectors for words that
    only unlabelled training sentences hold, instead of mapping them to ``<unk>``."""
    eval_batch_size: int = 500
    teachers: tuple[str, ...] = ()
    """Knowledge distillation (Hinton et al., 2015): finished ``classify`` run dirs whose
    softened predictions (averaged over an ensemble) the model learns from, with the
    labels; the loss is ``alpha * T^2 * KL(teacher || student at T) + (1 - alpha) * CE``."""
    temperature: float = 2.0
    """The distillation temperature T."""
    alpha: float = 0.5
    """The weight of the soft (teacher) term."""
    unlabelled: str | None = None
    """A text file (one whitespace-tokenised sentence per line) whose sentences are added
    to training without a label: with the teachers' soft targets only (``teachers``), or
    with the virtual adversarial term only (``optim.adversarial.kind: vat``)."""
    batching: Literal["bucket", "random"] = "bucket"
    """Training batches: ``bucket`` groups examples of similar length (less padding, fast);
    ``random`` draws each batch at random from the whole training set, as Kim's (2014) code
    does. With SST phrases, length and label go together (most short phrases are neutral),
    so bucketed batches have skewed label mixes."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """Easy examples first (:mod:`seqlab.data.curriculum`), by ``length`` (tokens) only;
    replaces ``batching`` when its schedule is not ``none``."""

    def validate(self) -> None:
        self.curriculum.validate()
        if self.curriculum.schedule != "none" and self.curriculum.score != "length":
            raise ConfigError(
                f"data.curriculum.score={self.curriculum.score!r}: the classify task scores "
                "its examples by 'length' only"
            )
        if self.max_length < 1 or self.eval_batch_size < 1:
            raise ConfigError("data.max_length and data.eval_batch_size must be >= 1")
        if self.temperature <= 0 or not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(
                f"data.temperature must be > 0 and data.alpha in [0, 1], got "
                f"{self.temperature} and {self.alpha}"
            )
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"data.train_fraction must be in (0, 1], got {self.train_fraction}")


CLASSIFY_MODELS: Registry[ModelSpec[ClassifyData]] = Registry("classification model")
CLASSIFY_MODELS.register(
    "cnn",
    ModelSpec(
        TextCNNConfig, lambda cfg, data: TextCNN(cfg.model, len(data.vocab), len(data.labels))
    ),
)
CLASSIFY_MODELS.register(
    "rnn",
    ModelSpec(
        RNNClassifierConfig,
        lambda cfg, data: RNNClassifier(cfg.model, len(data.vocab), len(data.labels)),
    ),
)

Examples = tuple[list[list[str]], list[int]]
"""(tokens per example, label index per example)"""


@dataclass
class ClassifyData:
    vocab: Vocab
    labels: list[str]
    splits: dict[str, Examples]
    report: dict[str, int]
    soft: torch.Tensor | None = None
    """(N_train, K) the teachers' softened distributions (``data.teachers``), computed at
    the first training batch (``soft_targets``): evaluating a distilled run never runs its
    teachers."""
    sampler: CurriculumSampler | None = None
    """The curriculum of the training examples (``data.curriculum``), made at the first epoch."""


def _sst_label(label: int, scheme: str) -> int | None:
    if scheme == "fine":
        return label
    return None if label == 2 else int(label > 2)


def load_sst(
    dcfg: ClassifyDataConfig, report: dict[str, int], splits: Sequence[str]
) -> dict[str, Examples]:
    roles = {"train": "train", "val": "dev", "test": "test"}
    result: dict[str, Examples] = {}
    for split in splits:
        trees = list(read_trees(resolve(dcfg.dataset, roles[split])))
        nodes: list[Tree] = trees
        if split == "train" and dcfg.phrases:
            seen: set[tuple[str, ...]] = set()
            nodes = []
            for node in (p for tree in trees for p in tree.phrases()):
                key = tuple(node.leaves())
                if key not in seen:
                    seen.add(key)
                    nodes.append(node)
        tokens, labels = [], []
        for node in nodes:
            label = _sst_label(node.label, dcfg.labels)
            if label is not None:
                tokens.append(node.leaves())
                labels.append(label)
        report[f"{split}_read"] = len(nodes)
        report[f"{split}_neutral_left_out"] = len(nodes) - len(labels)
        result[split] = (tokens, labels)
    return result


def load_flat(
    dcfg: ClassifyDataConfig, report: dict[str, int]
) -> tuple[list[list[str]], list[str]]:
    """MR or a labelled-lines file: (tokens, label names)."""
    if dcfg.dataset == "rt_polarity":
        examples, skipped = read_polarity(
            resolve("rt_polarity", "pos"), resolve("rt_polarity", "neg"), encoding=dcfg.encoding
        )
        report["empty_lines_left_out"] = skipped
        return [t.split() for t, _ in examples], ["pos" if y == 1 else "neg" for _, y in examples]
    tokens, names = [], []
    path = resolve(dcfg.dataset)
    with open(path, encoding=dcfg.encoding) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                report["empty_lines_left_out"] = report.get("empty_lines_left_out", 0) + 1
                continue
            if "\t" not in line:
                raise DataError(f"{path}:{number}: expected 'label<TAB>text'")
            label, text = line.rstrip("\n").split("\t", 1)
            tokens.append(text.split())
            names.append(label)
    if not tokens:
        raise DataError(f"{path}: empty corpus (no labelled lines)")
    return tokens, names


def read_unlabelled(path_or_name: str, encoding: str) -> list[list[str]]:
    """The non-empty lines of a text file, whitespace-tokenised."""
    path = resolve(path_or_name)
    with open(path, encoding=encoding) as handle:
        tokens = [line.split() for line in handle if line.strip()]
    if not tokens:
        raise DataError(f"{path}: no sentence in data.unlabelled")
    return tokens


def subset(examples: Examples, fraction: float, seed: int) -> Examples:
    """The first ``round(fraction * n)`` (at least one) examples of a seeded permutation:
    nested for growing fractions, the same for every model and training seed."""
    tokens, labels = examples
    order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(seed)).tolist()
    kept = sorted(order[: max(1, round(fraction * len(tokens)))])
    return [tokens[i] for i in kept], [labels[i] for i in kept]


class SentenceClassifyTask(TrainedTask[ClassifyData]):
    name = "classify"
    data_config = ClassifyDataConfig
    models = CLASSIFY_MODELS
    default_model = "cnn"
    supports_folds = True

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> ClassifyData:
        dcfg: ClassifyDataConfig = cfg.data
        adversarial = cfg.optim.adversarial
        vat = adversarial is not None and adversarial.kind == "vat"
        if dcfg.unlabelled is not None and not dcfg.teachers and not vat:
            raise ConfigError(
                "data.unlabelled needs data.teachers or optim.adversarial.kind: vat "
                "(its sentences have no label; only those two give them a loss)"
            )
        report: dict[str, int] = {}
        if dcfg.dataset == "sst":
            if cfg.eval.folds > 1:
                raise ConfigError("SST has fixed train/dev/test splits; set eval.folds: 1")
            splits = load_sst(dcfg, report, ("train", "val", "test"))
            label_names = FINE_LABELS if dcfg.labels == "fine" else BINARY_LABELS
        else:
            tokens, names = load_flat(dcfg, report)
            label_names = sorted(set(names))
            index = {name: i for i, name in enumerate(label_names)}
            idx = split_indices(
                len(tokens),
                cfg.eval.folds,
                fold,
                dcfg.val_fraction,
                dcfg.test_fraction,
                dcfg.split_seed,
                names,
            )
            splits = {
                s: ([tokens[i] for i in ids], [index[names[i]] for i in ids])
                for s, ids in idx.items()
                if len(ids)
            }
        train_text = splits["train"][0]
        if dcfg.train_fraction < 1.0:
            before = len(splits["train"][0])
            splits["train"] = subset(splits["train"], dcfg.train_fraction, dcfg.split_seed)
            report["train_before_fraction"] = before
        if dcfg.unlabelled is not None:
            extra = read_unlabelled(dcfg.unlabelled, dcfg.encoding)
            report["train_unlabelled"] = len(extra)
            train_tokens, train_labels = splits["train"]
            splits["train"] = (train_tokens + extra, train_labels + [UNLABELLED] * len(extra))
        if dcfg.lowercase:
            splits = {s: ([[w.lower() for w in t] for t in x], y) for s, (x, y) in splits.items()}
        for split, (tokens_, _) in splits.items():
            report[f"{split}_examples"] = len(tokens_)
            report[f"{split}_cut_to_max_length"] = sum(len(t) > dcfg.max_length for t in tokens_)
            report[f"{split}_empty"] = sum(not t for t in tokens_)
        if train:
            counted = splits["train"][0]
            if dcfg.vocab_from == "train_text":
                case = str.lower if dcfg.lowercase else str
                extra_text = [t for t, y in zip(*splits["train"], strict=True) if y == UNLABELLED]
                counted = [[case(w) for w in t] for t in train_text] + extra_text
            counts = Counter(w for t in counted for w in t)
            vocab = Vocab.from_counter(counts, min_count=dcfg.min_count)
            vocab.save(RunDir(run_dir).vocab)
            save_labels(run_dir, label_names)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
            label_names = load_labels(run_dir, self.name)
        if train:  # a loaded run (eval, serve) leaves its run dir as it is
            save_data_report(run_dir, report)
        left_out = {k: v for k, v in report.items() if "left_out" in k or "cut" in k}
        if train and any(left_out.values()):
            Console(stderr=True).print(f"data: {left_out} (see {RunDir(run_dir).data_report})")
        if train and dcfg.teachers:  # their soft targets come at the first training batch
            check_teachers(self, dcfg.teachers, label_names, cfg.trainer.device)
        return ClassifyData(vocab, label_names, splits, report)

    def setup_eval(
        self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None
    ) -> ClassifyData:
        if data_path is not None:
            raise ConfigError("task 'classify' does not take --data; set data.dataset instead")
        return self.setup(cfg, run_dir, train=False)

    def splits(self, data: ClassifyData) -> list[str]:
        return [s for s in ("val", "test") if s in data.splits]

    def build_model(self, cfg: ExperimentConfig, data: ClassifyData) -> nn.Module:
        model = super().build_model(cfg, data)
        vectors = cfg.model.vectors
        if vectors is not None:
            report = cast(SentenceClassifier, model).load_vectors(data.vocab.itos, vectors)
            Console(stderr=True).print(str(report), highlight=False)
        return model

    def start_model(self, cfg: ExperimentConfig, model: nn.Module, data: ClassifyData) -> None:
        start_from(cfg, model, data.vocab.itos)

    def make_batch(
        self,
        cfg: ExperimentConfig,
        data: ClassifyData,
        tokens: Sequence[Sequence[str]],
        labels: Sequence[int],
    ) -> ClassifyBatch:
        dcfg: ClassifyDataConfig = cfg.data
        # an empty sentence is one <unk>, so that every example has a step
        ids = [data.vocab.encode(t) if t else [data.vocab.unk_index] for t in tokens]
        words = pad_batch(ids, data.vocab.pad_index, dcfg.max_length)
        return ClassifyBatch(words, torch.tensor(list(labels), dtype=torch.long))

    def soft_targets(self, cfg: ExperimentConfig, data: ClassifyData) -> torch.Tensor | None:
        """The teachers' softened distributions over the training examples (None without
        ``data.teachers``), computed once and kept in ``data.soft``."""
        dcfg: ClassifyDataConfig = cfg.data
        if dcfg.teachers and data.soft is None:
            data.soft = teacher_probs(
                self,
                dcfg.teachers,
                data.splits["train"][0],
                data.labels,
                dcfg.temperature,
                cfg.trainer.device,
            )
        return data.soft

    def train_batches(
        self, cfg: ExperimentConfig, data: ClassifyData, epoch: int
    ) -> Iterator[ClassifyBatch]:
        dcfg: ClassifyDataConfig = cfg.data
        tokens, labels = data.splits["train"]
        tcfg = cfg.trainer
        if dcfg.curriculum.schedule != "none":
            if data.sampler is None:
                data.sampler = CurriculumSampler(
                    [float(len(t)) for t in tokens], dcfg.curriculum, tcfg.batch_size,
                    tcfg.seed, tcfg.accumulate,
                )  # fmt: skip
            order = data.sampler.sized(tcfg.batch_size, tcfg.accumulate).epoch(epoch)
        else:
            order = bucket_batches(
                [len(t) for t in tokens],
                tcfg.batch_size,
                shuffle=True,
                seed=tcfg.seed * 100_003 + epoch,
                # one batch per bucket: the shuffled order cut into consecutive batches
                bucket_size_multiplier=BUCKET_SIZE_MULTIPLIER if dcfg.batching == "bucket" else 1,
            )
        soft = self.soft_targets(cfg, data)
        for chosen in order:
            batch = self.make_batch(
                cfg, data, [tokens[i] for i in chosen], [labels[i] for i in chosen]
            )
            if soft is not None:
                targets = SoftTargets(soft[chosen], dcfg.temperature, dcfg.alpha)
                batch = batch._replace(soft=targets)
            yield batch

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: ClassifyData, split: str
    ) -> dict[str, float]:
        dcfg: ClassifyDataConfig = cfg.data
        tokens, labels = data.splits[split]
        was_training = model.training
        model.eval()
        correct, loss_sum = 0, 0.0
        device = module_device(model)
        with torch.no_grad():
            for start in range(0, len(tokens), dcfg.eval_batch_size):
                end = start + dcfg.eval_batch_size
                batch = self.make_batch(cfg, data, tokens[start:end], labels[start:end])
                batch = move_to(batch, device)
                out = contract(model).loss(batch)
                loss_sum += float(out.loss) * out.n
                correct += int((contract(model).predict(batch) == batch.labels).sum())
        model.train(was_training)
        return {
            f"{split}_loss": loss_sum / len(tokens),
            f"{split}_acc": 100.0 * correct / len(tokens),
        }

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: ClassifyData, lines: Iterable[str]
    ) -> Iterator[str]:
        """``label<TAB>probability<TAB>text`` for each input line (whitespace tokens)."""
        dcfg: ClassifyDataConfig = cfg.data
        for line in lines:
            text = line.rstrip("\n")
            tokens = (text.lower() if dcfg.lowercase else text).split()
            batch = move_to(self.make_batch(cfg, data, [tokens], [0]), module_device(model))
            with torch.no_grad():
                probs = F.softmax(model.logits(batch), dim=-1)[0]  # type: ignore[operator]
            label = int(probs.argmax())
            yield f"{data.labels[label]}\t{float(probs[label]):.4f}\t{text}"

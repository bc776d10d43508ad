"""Count-based n-gram language models (add-k, Kneser-Ney) as the task ``lm_ngram``.

Text is one sentence per line, words separated by whitespace; blank lines are skipped.
``<eos>`` ends every sentence and is predicted; ``<s>`` starts every history (see
``seqlab.models.ngram``). The splits come from

- a registered dataset (``data.dataset``, default ``ptb``): its ``train`` / ``valid`` /
  ``test`` files;
- ``data.train`` and ``data.valid`` (and optionally ``data.test``): three text files;
- otherwise ``data.dataset`` is one text file: its first ``1 - val_fraction`` of the lines
  train, the rest validate (like the char LM's split).

The vocabulary is ``<unk>``, ``<eos>`` and the training words (``min_count``,
``max_size``), so for PTB it is Mikolov's 10,000. Other words map to ``<unk>`` and are
counted (``{split}_oov``). Metrics, over every word and ``<eos>`` (``<unk>`` included, as in
Mikolov's PTB numbers): ``{split}_loss`` in nats per token and ``{split}_ppl = exp(loss)``.

There is no gradient training: ``fit`` counts in one pass, saves the vocabulary and the
counts (``counts.safetensors``) in the run dir and evaluates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec
from seqlab.data.catalogue import DATASETS
from seqlab.data.readers import read_lines, read_text
from seqlab.data.sources import resolve
from seqlab.data.vocab import EOS, UNK, Vocab
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.models.ngram import AddKConfig, KneserNeyConfig, NGramLM
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import FittedTask

SPLIT_ROLES = {"train": "train", "val": "valid", "test": "test"}
"""seqlab split name -> dataset file role."""


@dataclass(frozen=True)
class NGramDataConfig:
    dataset: str = "ptb"
    """A dataset with train/valid/test files, or one text file split by ``val_fraction``."""
    train: str | None = None
    """With ``valid`` (and ``test``): explicit split files; ``dataset`` is then unused."""
    valid: str | None = None
    test: str | None = None
    val_fraction: float = 0.1
    level: Literal["word", "char"] = "word"
    """``char``: every character is a token and each line break is ``<eos>``; a single
    file is then cut at the same character as the ``lm_rnn`` char task cuts it, so the
    two are scored on the same validation text (reported in bits per character)."""
    lowercase: bool = False
    min_count: int = 1
    max_size: int | None = None
    """Vocabulary size cap, ``<unk>`` and ``<eos>`` included."""

    def validate(self) -> None:
        if self.train is None and (self.valid is not None or self.test is not None):
            raise ConfigError("data.valid / data.test need data.train as well")
        if self.train is not None and self.valid is None:
            raise ConfigError("data.train needs data.valid (and optionally data.test)")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError("data.val_fraction must be in (0, 0.5)")
        if self.min_count < 1:
            raise ConfigError("data.min_count must be at least 1")


def _build_ngram(cfg: ExperimentConfig, data: NGramData) -> NGramLM:
    """An unfitted ``NGramLM`` (not an ``nn.Module``: counts, no parameters)."""
    return NGramLM(cfg.model, len(data.vocab), data.vocab.stoi[EOS])


NGRAM_MODELS: Registry[ModelSpec[NGramData]] = Registry("n-gram model")
NGRAM_MODELS.register("kneser_ney", ModelSpec(KneserNeyConfig, _build_ngram))
NGRAM_MODELS.register("add_k", ModelSpec(AddKConfig, _build_ngram))


@dataclass
class NGramData:
    vocab: Vocab
    splits: dict[str, list[list[int]]]
    """split -> sentences of word ids (without ``<eos>``)"""
    oov: dict[str, int]
    """split -> words that were not in the vocabulary (mapped to ``<unk>``)"""


def read_sentences(path: Path, lowercase: bool, level: str = "word") -> list[list[str]]:
    """Whitespace-tokenized non-blank lines of a text file (``char``: the characters of
    every line, blank lines included, since their line break is a token to predict)."""
    if level == "char":
        return [list(line.lower() if lowercase else line) for line in read_lines(path)]
    sentences = [(line.lower() if lowercase else line).split() for line in read_lines(path)]
    return [s for s in sentences if s]


def encode(vocab: Vocab, sentences: list[list[str]]) -> tuple[list[list[int]], int]:
    """(ids of each sentence, number of words outside the vocabulary mapped to <unk>)."""
    stoi, unk = vocab.stoi, vocab.unk_index
    ids = [[stoi.get(word, unk) for word in sentence] for sentence in sentences]
    oov = sum(1 for sentence in sentences for word in sentence if word not in stoi)
    return ids, oov


def load_splits(dcfg: NGramDataConfig, *, with_train: bool) -> dict[str, list[list[str]]]:
    """Tokenized sentences per split (``train`` only ``with_train``)."""
    if dcfg.train is not None:
        files = {"train": dcfg.train, "val": dcfg.valid, "test": dcfg.test}
        paths = {name: resolve(path) for name, path in files.items() if path is not None}
    elif dcfg.dataset in DATASETS and {"train", "valid"} <= set(DATASETS.get(dcfg.dataset).files):
        spec = DATASETS.get(dcfg.dataset)
        roles = {name: role for name, role in SPLIT_ROLES.items() if role in spec.files}
        paths = {name: resolve(dcfg.dataset, role) for name, role in roles.items()}
        if "train" not in paths or "val" not in paths:
            raise DataError(f"dataset {dcfg.dataset!r} has no train and valid files")
    else:
        return _split_one_file(resolve(dcfg.dataset), dcfg)
    result: dict[str, list[list[str]]] = {}
    for name, path in paths.items():
        if name == "train" and not with_train:
            continue
        result[name] = read_sentences(path, dcfg.lowercase, dcfg.level)
        if not result[name]:
            raise DataError(f"{path}: empty corpus (no sentences)")
    return result


def _split_one_file(path: Path, dcfg: NGramDataConfig) -> dict[str, list[list[str]]]:
    if dcfg.level == "char":
        text = read_text(path)
        text = text.lower() if dcfg.lowercase else text
        cut = int(len(text) * (1 - dcfg.val_fraction))
        return {
            "train": [list(line) for line in text[:cut].split("\n")],
            "val": [list(line) for line in text[cut:].rstrip("\n").split("\n")],
        }
    sentences = read_sentences(path, dcfg.lowercase)
    cut = int(len(sentences) * (1 - dcfg.val_fraction))
    if cut < 1 or cut == len(sentences):
        raise DataError(
            f"{path}: {len(sentences)} non-blank lines are too few to split into train "
            f"and validation (val_fraction {dcfg.val_fraction})"
        )
    return {"train": sentences[:cut], "val": sentences[cut:]}


class NGramLMTask(FittedTask[NGramData]):
    name = "lm_ngram"
    data_config = NGramDataConfig
    models = NGRAM_MODELS
    default_model = "kneser_ney"

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> NGramData:
        dcfg: NGramDataConfig = cfg.data
        splits = load_splits(dcfg, with_train=train)
        if train:
            vocab = Vocab.build(
                splits["train"],
                specials=(UNK, EOS),
                min_count=dcfg.min_count,
                max_size=dcfg.max_size,
            )
            vocab.save(RunDir(run_dir).vocab)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
        encoded = {name: encode(vocab, sentences) for name, sentences in splits.items()}
        return NGramData(
            vocab,
            {name: ids for name, (ids, _) in encoded.items()},
            {name: oov for name, (_, oov) in encoded.items()},
        )

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> NGramData:
        """With ``data_path``: that text file is both ``val`` and ``test``."""
        if data_path is None:
            return self.setup(cfg, run_dir, train=False)
        vocab = Vocab.load(RunDir(run_dir).vocab)
        path = resolve(data_path)
        sentences = read_sentences(path, cfg.data.lowercase, cfg.data.level)
        if not sentences:
            raise DataError(f"{path}: empty corpus (no sentences)")
        ids, oov = encode(vocab, sentences)
        return NGramData(vocab, {"val": ids, "test": ids}, {"val": oov, "test": oov})

    def splits(self, data: NGramData) -> list[str]:
        return [name for name in ("val", "test") if name in data.splits]

    def evaluate(
        self, cfg: ExperimentConfig, model: Any, data: NGramData, split: str
    ) -> dict[str, float]:
        total, n = _ngram(model).total_logprob(data.splits[split])
        nats = -total / n
        result = {
            f"{split}_loss": nats,
            f"{split}_ppl": math.exp(nats),
            f"{split}_tokens": float(n),
            f"{split}_oov": float(data.oov[split]),
        }
        if cfg.data.level == "char":
            result[f"{split}_bpc"] = nats / math.log(2)
        return result

    def fit(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        fold: int | None = None,
        console: Console | None = None,
    ) -> dict[str, float]:
        """Count, save and evaluate; ``resume`` just counts again (it takes seconds)."""
        console = console or Console(stderr=True)
        data = self.setup(cfg, run_dir, train=True)
        start = time.perf_counter()
        spec = self.models.get(cfg.model.name)
        model = spec.build(cfg, data).fit(data.splits["train"])  # one counting pass, in order
        seconds = time.perf_counter() - start
        model.save(RunDir(run_dir).counts)
        console.print(
            f"fitted {cfg.model.name} order {model.order} in {seconds:.2f} s: "
            f"n-grams per order {model.num_ngrams()}, |V| = {model.vocab_size}"
        )
        metrics: dict[str, float] = {
            "fit_seconds": seconds,
            "train_tokens": float(sum(len(s) + 1 for s in data.splits["train"])),
        }
        for split in self.final_splits(cfg, data):
            metrics.update(self.evaluate(cfg, model, data, split))
        self.log_fit(run_dir, 0, 0, metrics)
        return metrics

    def load_trained(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        data_path: str | None = None,
        fold: int | None = None,
    ) -> tuple[Any, NGramData]:
        data = self.setup_eval(cfg, run_dir, data_path)
        model = NGramLM.load(RunDir(run_dir).counts)
        if model.vocab_size != len(data.vocab):
            raise RunDirError(
                f"{RunDir(run_dir).counts}: model has {model.vocab_size} words but "
                f"{RunDir(run_dir).vocab} has {len(data.vocab)}"
            )
        return model, data

    def generate(
        self,
        cfg: ExperimentConfig,
        model: Any,
        data: NGramData,
        *,
        prompt: str = "",
        max_tokens: int = 20,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        beam: int = 0,
        **_: object,
    ) -> Iterator[str]:
        """The prompt, then each sampled word (`` word``; a line break for ``<eos>``).

        The prompt's words are the start of the first sentence (unknown ones act as
        ``<unk>``).
        """
        if beam > 0:
            raise ConfigError("lm_ngram samples; it has no beam search (use --beam 0)")
        text = prompt.lower() if cfg.data.lowercase else prompt
        words = list(text) if cfg.data.level == "char" else text.split()
        prefix = encode(data.vocab, [words])[0][0]
        rng = np.random.default_rng(seed)
        ids = _ngram(model).generate(prefix, max_tokens, rng, temperature, top_k, top_p)
        yield prompt
        space = bool(words)
        for index in ids:
            word = data.vocab.itos[index]
            if word == EOS:
                yield "\n"
            elif cfg.data.level == "char":
                yield word
            else:
                yield f" {word}" if space else word
            space = word != EOS


def _ngram(model: Any) -> NGramLM:
    if not isinstance(model, NGramLM):
        raise ConfigError(f"lm_ngram runs hold an NGramLM, not {type(model).__name__}")
    return model

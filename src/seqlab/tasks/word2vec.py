"""word2vec as a `seqlab` task: train vectors on a corpus, evaluate and query them.

Config mapping (``task: word2vec``): ``model.name`` is ``skipgram`` or ``cbow``;
``optim.lr`` is word2vec's starting ``alpha``, decaying linearly to ``optim.min_lr``
(``optim.name`` must be ``sgd``; the schedule is always linear); ``trainer.epochs``,
``trainer.seed`` and ``trainer.max_steps`` (jobs of ``data.batch_words`` words) work as
everywhere; ``trainer.threads`` is the number of Hogwild worker threads (0: one per CPU).
Only ``trainer.threads: 1`` gives bit-identical vectors for a seed.

A run dir holds ``vectors.txt`` and ``vectors.bin`` (word2vec text and binary formats,
words by descending frequency), ``vocab.tsv`` (word and count), ``metrics.jsonl`` and
``metrics.json``. The metrics are the speed (``words_per_s``), analogy accuracy
(3CosAdd ``test_analogy`` and 3CosMul ``test_analogy_cosmul``, with the OOV count) and
the Spearman correlation on each word-similarity set (``test_wordsim353``,
``test_simlex999``), all with gensim's protocol (:mod:`seqlab.embeddings.evaluate`).

``seqlab predict RUN_DIR`` reads query lines: one word gives its nearest neighbours, two
words their cosine similarity, three words ``a b c`` the analogy ``a - b + c``
(``king man woman`` -> queen).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from rich.console import Console
from torch import nn

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec
from seqlab.data.sources import resolve
from seqlab.embeddings.evaluate import (
    RESTRICT_VOCAB,
    AnalogyMethod,
    analogy,
    evaluate_analogies,
    evaluate_similarity,
    nearest_neighbours,
    similarity,
)
from seqlab.embeddings.vectors_io import WordVectors, load_word2vec, save_word2vec
from seqlab.embeddings.w2v_vocab import Vocabulary, build_vocab
from seqlab.embeddings.word2vec import Word2Vec, Word2VecConfig
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.io import atomic_write_text
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import FittedTask

EVAL_DATASET = "word_similarity"


@dataclass(frozen=True)
class Word2VecDataConfig:
    corpus: str = "ptb"
    """A dataset name (its ``split`` file), a text file, or a folder of ``*.txt`` files;
    one sentence per line, tokens separated by whitespace."""
    split: str = "train"
    min_count: int = 5
    max_vocab: int | None = None
    batch_words: int = 10_000
    max_sentence_length: int = 10_000
    analogies: str | None = "analogies"
    """A role of the ``word_similarity`` dataset or a questions-words style file."""
    similarity: tuple[str, ...] = ("wordsim353", "simlex999")
    """Roles of ``word_similarity`` or ``word1<TAB>word2<TAB>score`` files."""
    restrict_vocab: int = RESTRICT_VOCAB


@dataclass(frozen=True)
class Word2VecModelConfig:
    name: Literal["skipgram", "cbow"] = "skipgram"
    dim: int = 100
    window: int = 5
    negative: int = 5
    hs: bool = False
    sample: float = 1e-3
    ns_exponent: float = 0.75
    cbow_mean: bool = True


def _build_word2vec(cfg: ExperimentConfig, vocab: Vocabulary) -> Word2Vec:
    """The word2vec trainer for the corpus vocabulary ``vocab`` (its threads fit it)."""
    return Word2Vec(word2vec_config(cfg), vocab)


WORD2VEC_MODELS: Registry[ModelSpec[Vocabulary]] = Registry("word2vec model")
WORD2VEC_MODELS.register("skipgram", ModelSpec(Word2VecModelConfig, _build_word2vec))
WORD2VEC_MODELS.register("cbow", ModelSpec(Word2VecModelConfig, _build_word2vec))


def word2vec_config(cfg: ExperimentConfig) -> Word2VecConfig:
    """The trainer's hyperparameters from an experiment config (module docstring)."""
    data: Word2VecDataConfig = cfg.data
    model: Word2VecModelConfig = cfg.model
    if cfg.optim.name != "sgd":
        raise ConfigError("word2vec trains with plain SGD: set optim.name: sgd")
    return Word2VecConfig(
        architecture=model.name,
        dim=model.dim,
        window=model.window,
        min_count=data.min_count,
        max_vocab=data.max_vocab,
        sample=model.sample,
        negative=model.negative,
        hs=model.hs,
        ns_exponent=model.ns_exponent,
        cbow_mean=model.cbow_mean,
        alpha=cfg.optim.lr,
        min_alpha=cfg.optim.min_lr,
        epochs=cfg.trainer.epochs,
        workers=cfg.trainer.threads or len(os.sched_getaffinity(0)),
        seed=cfg.trainer.seed,
        batch_words=data.batch_words,
        max_sentence_length=data.max_sentence_length,
        max_steps=cfg.trainer.max_steps,
    )


def corpus_files(data: Word2VecDataConfig) -> list[Path]:
    """The corpus files: a dataset's split file, a file, or a folder's ``*.txt`` files."""
    path = Path(data.corpus).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataError(f"{path}: folder has no *.txt corpus files")
        return files
    return [resolve(data.corpus, data.split)]


def _eval_file(name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_file() else resolve(EVAL_DATASET, name)


@dataclass
class EvalFiles:
    """The evaluation sets of a run: analogy questions and word-similarity files."""

    analogies: Path | None
    similarity: dict[str, Path]
    """metric name -> file"""
    restrict_vocab: int


class WordVectorsModel(nn.Module):
    """Trained word vectors as a module: ``forward(ids)`` (*) -> (*, D) is a frozen lookup
    in ``wv.vectors``; ``wv`` answers the similarity queries."""

    def __init__(self, wv: WordVectors) -> None:
        super().__init__()
        self.wv = wv
        self.embedding = nn.Embedding.from_pretrained(torch.from_numpy(wv.vectors), freeze=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)


class Word2VecTask(FittedTask[EvalFiles]):
    name = "word2vec"
    data_config = Word2VecDataConfig
    models = WORD2VEC_MODELS
    default_model = "skipgram"

    # ---------------------------------------------------------------- data

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> EvalFiles:
        data: Word2VecDataConfig = cfg.data
        pair_files = {path.stem: path for path in map(_eval_file, data.similarity)}
        analogies = _eval_file(data.analogies) if data.analogies else None
        return EvalFiles(analogies, pair_files, data.restrict_vocab)

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> EvalFiles:
        files = self.setup(cfg, run_dir, train=False)
        if data_path is None:
            return files
        path = Path(data_path)
        if not path.is_file():
            raise DataError(f"{path}: evaluation file not found")
        if _is_analogy_file(path):
            return EvalFiles(path, {}, files.restrict_vocab)
        return EvalFiles(None, {path.stem: path}, files.restrict_vocab)

    def splits(self, data: EvalFiles) -> list[str]:
        return ["test"]

    # ---------------------------------------------------------------- model

    def fit(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        fold: int | None = None,
        console: Console | None = None,
    ) -> dict[str, float]:
        """Build the vocabulary, train, save the vectors and evaluate them."""
        console = console or Console(stderr=True)
        w2v_config = word2vec_config(cfg)
        eval_files = self.setup(cfg, run_dir, train=True)
        files = corpus_files(cfg.data)
        vocab = build_vocab(files, w2v_config.min_count, w2v_config.max_vocab)
        console.print(
            f"word2vec {w2v_config.architecture}: {len(vocab.words)} words kept of "
            f"{vocab.raw_words} tokens; {w2v_config.epochs} epochs, {w2v_config.workers} workers"
        )
        model = self.models.get(cfg.model.name).build(cfg, vocab)
        stats = model.train(files)
        console.print(
            f"trained on {stats.raw_words} words in {stats.seconds:.1f} s "
            f"({stats.words_per_s:,.0f} words/s)"
        )
        wv = model.wv
        save_word2vec(wv, RunDir(run_dir).vectors_text)
        save_word2vec(wv, RunDir(run_dir).vectors_binary, binary=True)
        _save_vocab(vocab, RunDir(run_dir).word_counts)
        metrics = {
            "words_per_s": stats.words_per_s,
            "train_seconds": stats.seconds,
            "corpus_words": float(stats.raw_words),
            "vocab_size": float(len(vocab.words)),
            "steps": float(stats.jobs),
        }
        metrics.update(self.evaluate(cfg, WordVectorsModel(wv), eval_files, "test"))
        self.log_fit(run_dir, stats.jobs, w2v_config.epochs, metrics)
        return metrics

    def load_trained(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        data_path: str | None = None,
        fold: int | None = None,
    ) -> tuple[nn.Module, EvalFiles]:
        return WordVectorsModel(load_run_vectors(run_dir)), self.setup_eval(cfg, run_dir, data_path)

    # ---------------------------------------------------------------- use

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: EvalFiles, split: str
    ) -> dict[str, float]:
        wv = _vectors_of(model)
        metrics: dict[str, float] = {}
        if data.analogies is not None:
            methods: tuple[tuple[AnalogyMethod, str], ...] = (
                ("add", "analogy"),
                ("mul", "analogy_cosmul"),
            )
            for method, key in methods:
                result = evaluate_analogies(
                    wv, data.analogies, method=method, restrict_vocab=data.restrict_vocab
                )
                metrics[f"{split}_{key}"] = result.accuracy
            metrics[f"{split}_analogy_semantic"] = result.subset_accuracy(syntactic=False)
            metrics[f"{split}_analogy_syntactic"] = result.subset_accuracy(syntactic=True)
            metrics[f"{split}_analogy_answered"] = float(result.answered)
            metrics[f"{split}_analogy_oov"] = float(result.oov)
        for name, path in data.similarity.items():
            scores = evaluate_similarity(wv, path, restrict_vocab=data.restrict_vocab)
            metrics[f"{split}_{name}"] = scores.spearman
            metrics[f"{split}_{name}_pairs"] = float(scores.pairs)
            metrics[f"{split}_{name}_oov"] = float(scores.oov)
        return metrics

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: EvalFiles, lines: Iterable[str]
    ) -> Iterator[str]:
        wv = _vectors_of(model)
        for line_no, line in enumerate(lines, start=1):
            words = line.split()
            if not words:
                continue
            try:
                yield answer_query(wv, words)
            except DataError as err:
                raise DataError(f"query line {line_no}: {err}") from None


def answer_query(wv: WordVectors, words: Sequence[str], k: int = 10) -> str:
    """One word: its ``k`` nearest neighbours; two: their cosine; three ``a b c``: the
    words nearest ``a - b + c``."""
    if len(words) == 1:
        return _format(nearest_neighbours(wv, words[0], k))
    if len(words) == 2:
        return f"{similarity(wv, words[0], words[1]):.4f}"
    if len(words) == 3:
        return _format(analogy(wv, words[0], words[1], words[2], k=min(k, 5)))
    raise DataError(
        f"expected 1 word (neighbours), 2 (similarity) or 3 (analogy), got {len(words)}"
    )


def _format(scored: list[tuple[str, float]]) -> str:
    return "  ".join(f"{word} {score:.3f}" for word, score in scored)


def _vectors_of(model: nn.Module) -> WordVectors:
    if not isinstance(model, WordVectorsModel):
        raise ConfigError("a word2vec run holds word vectors")
    return model.wv


def _is_analogy_file(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(line.startswith(":") for line, _ in zip(f, range(100), strict=False))


def _save_vocab(vocab: Vocabulary, path: Path) -> None:
    lines = (f"{w}\t{c}" for w, c in zip(vocab.words, vocab.counts.tolist(), strict=True))
    atomic_write_text(path, "\n".join(lines) + "\n")


def load_run_vectors(run_dir: Path) -> WordVectors:
    """The vectors a word2vec run saved."""
    path = RunDir(run_dir).vectors_binary
    if not path.is_file():
        raise RunDirError(
            f"{run_dir}: no {RunDir(run_dir).vectors_binary.name}; train the run first"
        )
    return load_word2vec(path, binary=True)

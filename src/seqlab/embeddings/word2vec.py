"""word2vec (Mikolov et al. 2013): skip-gram and CBOW, negative sampling and hierarchical
softmax, trained Hogwild-style by worker threads running numba kernels without the GIL.

The algorithm is word2vec.c's (and gensim's):

- vocabulary: words with at least ``min_count`` occurrences, the ``max_vocab`` most
  frequent, sorted by descending count;
- subsampling: a word with corpus frequency ``f`` is kept with probability
  ``(sqrt(f / t) + 1) * t / f`` (``t = sample``), drawn anew at every occurrence;
- dynamic window: for each centre word a window ``b`` is drawn uniformly from
  ``1..window`` and the ``2b`` words around it are its context;
- skip-gram: every context word's input vector ``v_c`` predicts the centre word;
  CBOW: the mean of the context input vectors predicts the centre word;
- negative sampling: ``log s(u_w . h) + sum_k log s(-u_nk . h)`` with ``negative`` noise
  words drawn from the unigram distribution raised to ``ns_exponent`` (0.75);
- hierarchical softmax: ``sum_j log s((1 - 2 code_j) u_{point_j} . h)`` over the path of
  the word in a Huffman tree of the counts;
- learning rate: linear from ``alpha`` to ``min_alpha`` over all epochs' words.

The corpus is streamed as bytes: one sentence per line, tokens separated by ASCII
whitespace (like word2vec.c and ``bytes.split``), words compared as UTF-8 bytes. The
reader thread only cuts the files into chunks of about ``batch_words`` words at line
boundaries, so memory stays bounded and files larger than memory work. Each of the
``workers`` threads takes a chunk and, without the GIL, tokenizes it, looks the tokens
up in a hash table, cuts sentences longer than ``max_sentence_length`` and trains,
updating the shared weight matrices without locks (Hogwild). A line longer than a chunk
is cut at a token boundary into several sentences. Each job has its own random stream
(word2vec.c's linear congruential generator) seeded from ``seed`` and the job number,
so with ``workers=1`` training is deterministic.

This module holds the configuration, the model and its thread pool; the vocabulary,
subsampling, noise table and Huffman tree are in :mod:`seqlab.embeddings.w2v_vocab`, the
numba kernels in :mod:`seqlab.embeddings.w2v_kernels`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from seqlab.embeddings.vectors_io import WordVectors
from seqlab.embeddings.w2v_kernels import build_table, encode_text, train_text
from seqlab.embeddings.w2v_vocab import (
    HuffmanTree,
    PathLike,
    Vocabulary,
    build_vocab,
    huffman_tree,
    iter_chunks,
    noise_table,
    subsample_thresholds,
)
from seqlab.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Word2VecConfig:
    """Every word2vec hyperparameter, with gensim 4's defaults."""

    architecture: Literal["skipgram", "cbow"] = "skipgram"
    dim: int = 100
    window: int = 5
    """Largest distance between centre and context word; each position draws 1..window."""
    min_count: int = 5
    max_vocab: int | None = None
    """Keep only the ``max_vocab`` most frequent words (after ``min_count``)."""
    sample: float = 1e-3
    """Subsampling threshold ``t`` (0: keep every word)."""
    negative: int = 5
    """Noise words per positive example (0: no negative sampling)."""
    hs: bool = False
    """Hierarchical softmax (may be combined with negative sampling)."""
    ns_exponent: float = 0.75
    cbow_mean: bool = True
    """CBOW hidden layer is the mean (True) or the sum (False) of the context vectors."""
    alpha: float = 0.025
    min_alpha: float = 0.0001
    epochs: int = 5
    workers: int = 3
    seed: int = 1
    batch_words: int = 10_000
    max_sentence_length: int = 10_000
    max_steps: int | None = None
    """Stop after this many jobs of ``batch_words`` words (smoke runs)."""

    def __post_init__(self) -> None:
        checks = [
            (self.dim >= 1, "dim must be >= 1"),
            (self.window >= 1, "window must be >= 1"),
            (self.min_count >= 1, "min_count must be >= 1"),
            (self.max_vocab is None or self.max_vocab >= 1, "max_vocab must be >= 1"),
            (self.sample >= 0, "sample must be >= 0"),
            (self.negative >= 0, "negative must be >= 0"),
            (self.hs or self.negative > 0, "need negative > 0 or hs: true"),
            (self.alpha > 0 and 0 <= self.min_alpha <= self.alpha, "need 0 <= min_alpha <= alpha"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.workers >= 1, "workers must be >= 1"),
            (self.batch_words >= 1 and self.max_sentence_length >= 1, "sizes must be >= 1"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"word2vec config: {message}")


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainStats:
    """What one call of :meth:`Word2Vec.train` did."""

    raw_words: int
    """Corpus tokens read, over all epochs (in vocabulary or not)."""
    trained_words: int
    """In-vocabulary tokens that survived subsampling (the centre words trained on)."""
    jobs: int
    seconds: float

    @property
    def words_per_s(self) -> float:
        return self.raw_words / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class _Job:
    text: np.ndarray
    """(N,) uint8 UTF-8 bytes of whole lines"""
    alpha: np.float32
    seed: np.uint64


class Word2Vec:
    """word2vec weights for a vocabulary: ``syn0`` (V, D) input vectors (the embeddings),
    ``syn1neg`` (V, D) output vectors for negative sampling, ``syn1`` (V-1, D) inner-node
    vectors for hierarchical softmax. Input vectors start uniform in ``[-0.5/D, 0.5/D)``,
    output vectors at zero (word2vec.c)."""

    def __init__(self, config: Word2VecConfig, vocab: Vocabulary) -> None:
        self.config = config
        self.vocab = vocab
        size, dim = len(vocab.words), config.dim
        rng = np.random.default_rng(config.seed)
        self.syn0 = (rng.random((size, dim), dtype=np.float32) - np.float32(0.5)) / np.float32(dim)
        self.syn1neg = np.zeros((size if config.negative else 0, dim), dtype=np.float32)
        self.syn1 = np.zeros((size - 1 if config.hs else 0, dim), dtype=np.float32)
        if config.hs:
            self.tree = huffman_tree(vocab.counts)
        else:
            self.tree = HuffmanTree(
                np.zeros((0, 1), np.uint8), np.zeros((0, 1), np.int32), np.zeros(0, np.int32)
            )
        self._keep = subsample_thresholds(vocab.counts, config.sample)
        self._noise = noise_table(vocab.counts, config.ns_exponent)
        encoded = [word.encode("utf-8") for word in vocab.words]
        self._word_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self._offsets = np.cumsum([0] + [len(w) for w in encoded], dtype=np.int64)
        table_size = 1 << max(4, (2 * size - 1).bit_length())  # load factor <= 1/2
        self._table = build_table(self._word_bytes, self._offsets, table_size)
        self._bytes_per_word = vocab.raw_bytes / vocab.raw_words

    @property
    def wv(self) -> WordVectors:
        """The trained word vectors (a view of ``syn0``)."""
        return WordVectors(self.vocab.words, self.syn0)

    def encode(self, text: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Word ids (N,) int32 of the tokens of ``text`` (-1: not in the vocabulary) and
        the end offsets (S,) int64 of its sentences."""
        return encode_text(
            np.frombuffer(text, dtype=np.uint8), self._word_bytes, self._offsets, self._table,
            self.config.max_sentence_length,
        )  # fmt: skip

    def train(self, paths: PathLike | Sequence[PathLike]) -> TrainStats:
        """Run ``config.epochs`` epochs over ``paths`` with ``config.workers`` threads."""
        workers = self.config.workers
        jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=2 * workers)
        counts = np.zeros((workers, 2), dtype=np.int64)  # per worker: raw, trained words
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=self._worker, args=(jobs, counts[slot], errors), daemon=True)
            for slot in range(workers)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        n_jobs = 0
        try:
            for job in self._jobs(paths):
                if errors:
                    break
                jobs.put(job)
                n_jobs += 1
        finally:
            for _ in threads:
                jobs.put(None)
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        raw_words, trained = (int(n) for n in counts.sum(axis=0))
        stats = TrainStats(raw_words, trained, n_jobs, time.perf_counter() - started)
        log.info("word2vec: %d words in %.1f s", raw_words, stats.seconds)
        return stats

    def _worker(
        self, jobs: queue.Queue[_Job | None], counts: np.ndarray, errors: list[BaseException]
    ) -> None:
        while (job := jobs.get()) is not None:
            if errors:
                continue  # drain the queue so the reader never blocks
            try:
                counts += self.train_job(job)
            except BaseException as err:  # re-raised in the calling thread
                errors.append(err)

    def train_job(self, job: _Job) -> tuple[int, int]:
        """Train on one job in the calling thread without the GIL; returns the number of
        tokens read and of words trained on (in vocabulary, not subsampled away)."""
        cfg, tree = self.config, self.tree
        raw, trained = train_text(
            job.text, self._word_bytes, self._offsets, self._table, cfg.max_sentence_length,
            cfg.architecture == "cbow", cfg.cbow_mean, self.syn0,
            (self.syn1neg, self.syn1, self._noise, tree.codes, tree.points, tree.lengths),
            self._keep, cfg.window, cfg.negative, cfg.hs, job.alpha, job.seed,
        )  # fmt: skip
        return int(raw), int(trained)

    def _jobs(self, paths: PathLike | Sequence[PathLike]) -> Iterator[_Job]:
        """Chunks of about ``batch_words`` words over all epochs, each with the learning
        rate at the progress (in bytes) before it."""
        cfg = self.config
        size = max(1, round(cfg.batch_words * self._bytes_per_word))
        total = self.vocab.raw_bytes * cfg.epochs
        done = 0
        number = 0
        for _ in range(cfg.epochs):
            for chunk in iter_chunks(paths, size):
                if cfg.max_steps is not None and number >= cfg.max_steps:
                    return
                yield self._make_job(chunk, done / total, number)
                done += len(chunk)
                number += 1

    def _make_job(self, chunk: bytes, progress: float, number: int) -> _Job:
        cfg = self.config
        alpha = cfg.alpha - (cfg.alpha - cfg.min_alpha) * min(progress, 1.0)
        seed = (cfg.seed * 0x9E3779B97F4A7C15 + number * 0xBF58476D1CE4E5B9 + 1) & (2**48 - 1)
        return _Job(
            np.frombuffer(chunk, dtype=np.uint8), np.float32(max(alpha, cfg.min_alpha)),
            np.uint64(seed),
        )  # fmt: skip


def train_word2vec(
    paths: PathLike | Sequence[PathLike], config: Word2VecConfig
) -> tuple[Word2Vec, TrainStats]:
    """Build the vocabulary of ``paths`` and train word2vec on them."""
    model = Word2Vec(config, build_vocab(paths, config.min_count, config.max_vocab))
    return model, model.train(paths)


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel variant on a tiny input, so the
    first real job is not slowed down by JIT compilation."""
    vocab = Vocabulary(("a", "b", "c"), np.array([3, 2, 1], dtype=np.int64), 6, 12)
    for cbow in (False, True):
        cfg = Word2VecConfig(architecture="cbow" if cbow else "skipgram", hs=True, workers=1)
        model = Word2Vec(cfg, vocab)
        model.train_job(model._make_job(b"a b c\na b a\n", 0.0, 0))

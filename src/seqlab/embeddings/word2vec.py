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
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from numba import njit

from seqlab.embeddings.vectors_io import WordVectors
from seqlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PathLike = str | Path

MAX_EXP = np.float32(6.0)
"""Sigmoid arguments beyond +-MAX_EXP are treated as saturated (word2vec.c)."""
EXP_TABLE_SIZE = 1000
_EXP_INDEX_SCALE = np.float32(EXP_TABLE_SIZE / (2 * 6.0))
_SIGMOID_TABLE = (
    1.0 / (1.0 + np.exp(-(np.arange(EXP_TABLE_SIZE) / EXP_TABLE_SIZE * 2 - 1) * 6.0))
).astype(np.float32)
_NOISE_DOMAIN = 2**31 - 1
_SPACES = (b" ", b"\t", b"\r", b"\x0b", b"\x0c")
_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)

# word2vec.c's random number generator: next = next * 25214903917 + 11 (mod 2^48)
_LCG_MUL = np.uint64(25214903917)
_LCG_ADD = np.uint64(11)
_MASK48 = np.uint64((1 << 48) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT16 = np.uint64(16)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


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


# ----------------------------------------------------------------------------- corpus


def _as_list(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]


def iter_chunks(paths: PathLike | Sequence[PathLike], size: int = 1 << 20) -> Iterator[bytes]:
    """Yield the bytes of ``paths`` in chunks of about ``size`` bytes that end at a line
    break (or, for a line longer than ``size``, at whitespace), never cutting a token."""
    for path in _as_list(paths):
        try:
            with open(path, "rb") as f:
                yield from _cut_chunks(f, size)
        except (FileNotFoundError, IsADirectoryError):
            raise DataError(f"{path}: corpus file not found") from None


def _cut_chunks(f: BinaryIO, size: int) -> Iterator[bytes]:
    carry = b""
    while block := f.read(size):
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1 or max(data.rfind(c) for c in _SPACES) + 1
        if cut == 0:  # a single token longer than the chunk: keep reading
            carry = data
            continue
        yield data[:cut]
        carry = data[cut:]
    if carry:
        yield carry


# ----------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Vocabulary:
    """Kept words by descending count (ties: first occurrence first) and corpus totals."""

    words: tuple[str, ...]
    counts: np.ndarray
    """(V,) int64 occurrence counts of ``words``."""
    raw_words: int
    """All tokens in the corpus, kept or not."""
    raw_bytes: int
    """Size of the corpus (the denominator of training progress)."""

    def index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}


def build_vocab(
    paths: PathLike | Sequence[PathLike], min_count: int = 5, max_vocab: int | None = None
) -> Vocabulary:
    """Count the corpus once and keep the words with at least ``min_count`` occurrences."""
    counter: Counter[bytes] = Counter()
    raw_bytes = 0
    for chunk in iter_chunks(paths):
        counter.update(chunk.split())
        raw_bytes += len(chunk)
    raw_words = sum(counter.values())
    where = ", ".join(str(p) for p in _as_list(paths)) or "(no files)"
    if raw_words == 0:
        raise DataError(f"{where}: the corpus is empty (no words)")
    ranked = sorted(counter.items(), key=lambda item: -item[1])  # stable: ties keep order
    kept = [(w, c) for w, c in ranked if c >= min_count][:max_vocab]
    if not kept:
        top_word, top_count = ranked[0]
        raise DataError(
            f"{where}: no word occurs min_count={min_count} times ({len(counter)} distinct "
            f"words; the most frequent, {_decode(top_word, where)!r}, occurs {top_count} "
            "times); lower min_count"
        )
    words = tuple(_decode(w, where) for w, _ in kept)
    counts = np.array([c for _, c in kept], dtype=np.int64)
    return Vocabulary(words, counts, raw_words, raw_bytes)


def _decode(word: bytes, where: str) -> str:
    try:
        return word.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{where}: the word {word!r} is not valid UTF-8") from None


def subsample_thresholds(counts: np.ndarray, sample: float) -> np.ndarray:
    """(V,) uint64: keep an occurrence when a random 32-bit integer is <= this threshold.

    The keep probability is ``(sqrt(c / (t N)) + 1) * t N / c`` for a word with count
    ``c`` of ``N`` kept tokens, capped at 1 (``2^32``: always kept).
    """
    if sample <= 0:
        return np.full(len(counts), 2**32, dtype=np.uint64)
    threshold = sample * float(counts.sum())
    keep = (np.sqrt(counts / threshold) + 1) * threshold / counts
    return np.round(np.minimum(keep, 1.0) * 2**32).astype(np.uint64)


def noise_table(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """(V, 2) int64 alias table (Walker/Vose) of the noise distribution ``count^exponent``.

    To draw a noise word, pick a row ``i`` uniformly and a 32-bit random integer ``r``:
    the word is ``i`` if ``r < table[i, 0]``, else ``table[i, 1]``. That is O(1) per draw
    and exact, where word2vec.c's 10^8-entry unigram table is a cache miss per draw and
    gensim's cumulative table a binary search.
    """
    weights = counts.astype(np.float64) ** exponent
    scaled = weights * (len(counts) / weights.sum())  # mean 1
    table = np.zeros((len(counts), 2), dtype=np.int64)
    table[:, 0] = 2**32
    table[:, 1] = np.arange(len(counts))
    small = [i for i in range(len(counts)) if scaled[i] < 1.0]
    large = [i for i in range(len(counts)) if scaled[i] >= 1.0]
    while small and large:
        lo, hi = small.pop(), large[-1]
        table[lo] = (round(scaled[lo] * 2**32), hi)
        scaled[hi] -= 1.0 - scaled[lo]
        if scaled[hi] < 1.0:
            small.append(large.pop())
    return table


@dataclass(frozen=True)
class HuffmanTree:
    """Binary codes and inner-node paths of every word (hierarchical softmax).

    ``codes[w, :lengths[w]]`` are the branch bits from the root to word ``w`` and
    ``points[w, :lengths[w]]`` the inner nodes (rows of ``syn1``) on that path.
    Frequent words get short codes.
    """

    codes: np.ndarray
    """(V, L) uint8"""
    points: np.ndarray
    """(V, L) int32"""
    lengths: np.ndarray
    """(V,) int32"""


def huffman_tree(counts: np.ndarray) -> HuffmanTree:
    """Build the Huffman tree of ``counts``; inner nodes are numbered ``0..V-2``."""
    vocab_size = len(counts)
    heap: list[tuple[int, int]] = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * vocab_size - 1, dtype=np.int64)
    branch = np.zeros(2 * vocab_size - 1, dtype=np.uint8)
    for inner in range(vocab_size - 1):
        count1, node1 = heapq.heappop(heap)
        count2, node2 = heapq.heappop(heap)
        node = vocab_size + inner
        parent[node1] = parent[node2] = node
        branch[node2] = 1
        heapq.heappush(heap, (count1 + count2, node))
    root = 2 * vocab_size - 2
    paths: list[list[int]] = []
    for word in range(vocab_size):
        path = []
        node = word
        while node != root:
            path.append(node)
            node = int(parent[node])
        paths.append(path[::-1])  # root first
    depth = max(1, max(len(p) for p in paths))
    codes = np.zeros((vocab_size, depth), dtype=np.uint8)
    points = np.zeros((vocab_size, depth), dtype=np.int32)
    lengths = np.array([len(p) for p in paths], dtype=np.int32)
    for word, path in enumerate(paths):
        codes[word, : len(path)] = branch[path]
        parents = [root, *(path[:-1])]
        points[word, : len(path)] = np.array(parents, dtype=np.int64) - vocab_size
    return HuffmanTree(codes, points, lengths)


# ----------------------------------------------------------------------------- text


@njit(nogil=True, cache=True, inline="always")
def _is_space(byte: np.uint8) -> bool:
    return bool(byte == 32 or 9 <= byte <= 13)  # space \t \n \v \f \r, as bytes.split()


@njit(nogil=True, cache=True, inline="always")
def _fnv1a(text: np.ndarray, start: int, end: int) -> np.uint64:
    value = _FNV_OFFSET
    for p in range(start, end):
        value = (value ^ np.uint64(text[p])) * _FNV_PRIME
    return value


@njit(nogil=True, cache=True)
def _build_table(word_bytes: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
    """Open-addressing hash table (``size`` a power of two): slot -> word id or -1."""
    table = np.full(size, -1, dtype=np.int32)
    mask = np.uint64(size - 1)
    for word in range(offsets.shape[0] - 1):
        slot = _fnv1a(word_bytes, offsets[word], offsets[word + 1]) & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = word
    return table


@njit(nogil=True, cache=True, inline="always")
def _lookup(
    text: np.ndarray,
    start: int,
    end: int,
    word_bytes: np.ndarray,
    offsets: np.ndarray,
    table: np.ndarray,
) -> int:
    """Word id of the token ``text[start:end]``, or -1 if it is not in the vocabulary."""
    mask = np.uint64(table.shape[0] - 1)
    slot = _fnv1a(text, start, end) & mask
    while table[slot] >= 0:
        word = table[slot]
        first = offsets[word]
        if offsets[word + 1] - first == end - start:
            same = True
            for p in range(end - start):
                if word_bytes[first + p] != text[start + p]:
                    same = False
                    break
            if same:
                return int(word)
        slot = (slot + np.uint64(1)) & mask
    return -1


@njit(nogil=True, cache=True)
def _encode(
    text: np.ndarray,
    word_bytes: np.ndarray,
    offsets: np.ndarray,
    table: np.ndarray,
    max_sentence_length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Tokenize UTF-8 ``text`` (N,) uint8 into word ids (-1: not in the vocabulary) and
    the end offsets of its sentences (lines, cut every ``max_sentence_length`` tokens)."""
    n = text.shape[0]
    ids = np.empty(n // 2 + 1, dtype=np.int32)
    ends = np.empty(n // 2 + 2, dtype=np.int64)
    count = n_ends = length = 0
    p = 0
    while p < n:
        if length > 0 and (text[p] == 10 or length == max_sentence_length):
            ends[n_ends] = count
            n_ends += 1
            length = 0
        if _is_space(text[p]):
            p += 1
            continue
        start = p
        while p < n and not _is_space(text[p]):
            p += 1
        ids[count] = _lookup(text, start, p, word_bytes, offsets, table)
        count += 1
        length += 1
    if length > 0:
        ends[n_ends] = count
        n_ends += 1
    return ids[:count], ends[:n_ends]


# ----------------------------------------------------------------------------- kernels


@njit(nogil=True, cache=True, inline="always")
def _next_random(state: np.ndarray) -> np.int64:
    """Advance the LCG in ``state[0]`` and return 32 random bits."""
    state[0] = (state[0] * _LCG_MUL + _LCG_ADD) & _MASK48
    return np.int64((state[0] >> _SHIFT16) & _MASK32)


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _sigmoid(x: np.float32) -> np.float32:
    return _SIGMOID_TABLE[int((x + MAX_EXP) * _EXP_INDEX_SCALE)]


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _negative_sampling(
    source: np.ndarray,
    row: int,
    syn1neg: np.ndarray,
    target: int,
    negative: int,
    noise: np.ndarray,
    alpha: np.float32,
    grad: np.ndarray,
    state: np.ndarray,
) -> None:
    """Negative-sampling step for the hidden vector ``h = source[row]`` (D,) predicting
    ``target``: update ``syn1neg`` for the target and the noise words, add the gradient
    step for ``h`` to ``grad`` (D,)."""
    dim = grad.shape[0]
    for d in range(negative + 1):
        if d == 0:
            word = target
            label = _ONE
        else:
            word = (_next_random(state) * noise.shape[0]) >> 32
            if _next_random(state) >= noise[word, 0]:
                word = noise[word, 1]
            if word == target:
                continue
            label = _ZERO
        score = _ZERO
        for k in range(dim):
            score += source[row, k] * syn1neg[word, k]
        if score >= MAX_EXP:
            g = (label - _ONE) * alpha
        elif score <= -MAX_EXP:
            g = label * alpha
        else:
            g = (label - _sigmoid(score)) * alpha
        for k in range(dim):
            grad[k] += g * syn1neg[word, k]
            syn1neg[word, k] += g * source[row, k]


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _hierarchical_softmax(
    source: np.ndarray,
    row: int,
    syn1: np.ndarray,
    target: int,
    codes: np.ndarray,
    points: np.ndarray,
    code_lengths: np.ndarray,
    alpha: np.float32,
    grad: np.ndarray,
) -> None:
    """Hierarchical-softmax step for ``h = source[row]`` predicting ``target``: update the
    inner nodes on the target's Huffman path, add the gradient step for ``h`` to ``grad``."""
    dim = grad.shape[0]
    for j in range(code_lengths[target]):
        node = points[target, j]
        score = _ZERO
        for k in range(dim):
            score += source[row, k] * syn1[node, k]
        if score <= -MAX_EXP or score >= MAX_EXP:
            continue
        g = (_ONE - np.float32(codes[target, j]) - _sigmoid(score)) * alpha
        for k in range(dim):
            grad[k] += g * syn1[node, k]
            syn1[node, k] += g * source[row, k]


@njit(nogil=True, cache=True, inline="always")
def _subsample(
    words: np.ndarray, start: int, end: int, keep: np.ndarray, out: np.ndarray, state: np.ndarray
) -> int:
    """Copy the in-vocabulary words of ``words[start:end]`` that survive subsampling to
    ``out``; return how many."""
    n = 0
    for p in range(start, end):
        word = words[p]
        if word < 0 or keep[word] < np.uint64(_next_random(state)):
            continue
        out[n] = word
        n += 1
    return n


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _output_layer(
    source: np.ndarray,
    row: int,
    target: int,
    syn1neg: np.ndarray,
    syn1: np.ndarray,
    noise: np.ndarray,
    codes: np.ndarray,
    points: np.ndarray,
    code_lengths: np.ndarray,
    negative: int,
    hs: bool,
    alpha: np.float32,
    grad: np.ndarray,
    state: np.ndarray,
) -> None:
    """Set ``grad`` to the step for ``h = source[row]`` from hierarchical softmax and/or
    negative sampling predicting ``target``, updating the output weights."""
    for k in range(grad.shape[0]):
        grad[k] = _ZERO
    if hs:
        _hierarchical_softmax(source, row, syn1, target, codes, points, code_lengths, alpha, grad)
    if negative > 0:
        _negative_sampling(source, row, syn1neg, target, negative, noise, alpha, grad, state)


@njit(nogil=True, cache=True, fastmath=True)
def _train_job(
    words: np.ndarray,
    sentence_ends: np.ndarray,
    cbow: bool,
    cbow_mean: bool,
    syn0: np.ndarray,
    tables: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    keep: np.ndarray,
    window: int,
    negative: int,
    hs: bool,
    alpha: np.float32,
    seed: np.uint64,
) -> int:
    """Train on one job: ``words`` (N,) int32 ids (-1: out of vocabulary) split into
    sentences at ``sentence_ends``. ``tables`` holds ``syn1neg, syn1, noise, codes,
    points, code_lengths``. Returns the number of words trained on.

    No array views are made in the loops: a view would touch the shared arrays' reference
    counts atomically and make the worker threads contend for one cache line.
    """
    syn1neg, syn1, noise, codes, points, code_lengths = tables
    dim = syn0.shape[1]
    grad = np.empty(dim, dtype=np.float32)
    hidden = np.empty((1, dim), dtype=np.float32)
    state = np.empty(1, dtype=np.uint64)
    state[0] = seed
    sentence = np.empty(words.shape[0], dtype=np.int32)
    trained = 0
    start = 0
    for s in range(sentence_ends.shape[0]):
        end = sentence_ends[s]
        n = _subsample(words, start, end, keep, sentence, state)
        start = end
        trained += n
        for i in range(n):
            b = int(_next_random(state) % window)
            lo = max(0, i - window + b)
            hi = min(n, i + window + 1 - b)
            if not cbow:
                for j in range(lo, hi):
                    if j != i:
                        context = sentence[j]
                        _output_layer(
                            syn0, context, sentence[i], syn1neg, syn1, noise, codes,
                            points, code_lengths, negative, hs, alpha, grad, state,
                        )  # fmt: skip
                        for k in range(dim):
                            syn0[context, k] += grad[k]
            elif hi - lo > 1:
                _context_mean(sentence, i, lo, hi, cbow_mean, syn0, hidden)
                _output_layer(
                    hidden, 0, sentence[i], syn1neg, syn1, noise, codes,
                    points, code_lengths, negative, hs, alpha, grad, state,
                )  # fmt: skip
                for j in range(lo, hi):
                    if j != i:
                        for k in range(dim):
                            syn0[sentence[j], k] += grad[k]
    return trained


@njit(nogil=True, cache=True)
def _train_text(
    text: np.ndarray,
    word_bytes: np.ndarray,
    offsets: np.ndarray,
    table: np.ndarray,
    max_sentence_length: int,
    cbow: bool,
    cbow_mean: bool,
    syn0: np.ndarray,
    tables: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    keep: np.ndarray,
    window: int,
    negative: int,
    hs: bool,
    alpha: np.float32,
    seed: np.uint64,
) -> tuple[int, int]:
    """Tokenize ``text`` and train on it; returns (tokens read, words trained on)."""
    words, sentence_ends = _encode(text, word_bytes, offsets, table, max_sentence_length)
    trained = _train_job(
        words, sentence_ends, cbow, cbow_mean, syn0, tables, keep, window, negative, hs,
        alpha, seed,
    )  # fmt: skip
    return words.shape[0], trained


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _context_mean(
    sentence: np.ndarray, i: int, lo: int, hi: int, mean: bool, syn0: np.ndarray, hidden: np.ndarray
) -> None:
    """``hidden[0]`` = sum (or mean) of the input vectors of ``sentence[lo:hi]`` except ``i``."""
    dim = syn0.shape[1]
    for k in range(dim):
        hidden[0, k] = _ZERO
    for j in range(lo, hi):
        if j != i:
            word = sentence[j]
            for k in range(dim):
                hidden[0, k] += syn0[word, k]
    if mean:
        scale = _ONE / np.float32(hi - lo - 1)
        for k in range(dim):
            hidden[0, k] *= scale


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
        self._table = _build_table(self._word_bytes, self._offsets, table_size)
        self._bytes_per_word = vocab.raw_bytes / vocab.raw_words

    @property
    def wv(self) -> WordVectors:
        """The trained word vectors (a view of ``syn0``)."""
        return WordVectors(self.vocab.words, self.syn0)

    def encode(self, text: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Word ids (N,) int32 of the tokens of ``text`` (-1: not in the vocabulary) and
        the end offsets (S,) int64 of its sentences."""
        return _encode(
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
        raw, trained = _train_text(
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

"""What word2vec knows of its corpus before training: the corpus cut into byte chunks, the
vocabulary (words with at least ``min_count`` occurrences, by descending count), the
subsampling thresholds, the alias table of the noise distribution (negative sampling) and
the Huffman tree of the counts (hierarchical softmax).

Chunks end at line breaks, so memory stays bounded and files larger than memory work;
tokens are split on ASCII whitespace like ``bytes.split``, and words are compared as UTF-8
bytes.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from seqlab.errors import DataError

PathLike = str | Path

_SPACES = (b" ", b"\t", b"\r", b"\x0b", b"\x0c")


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

"""word2vec's numba kernels: tokenizing a chunk of UTF-8 bytes, looking words up in a hash
table, and the skip-gram / CBOW updates with negative sampling and hierarchical softmax.

Every kernel is compiled with ``nogil=True``, so worker threads run them in parallel,
updating the shared weight matrices without locks (Hogwild), and ``cache=True``, so the
compiled code is kept in ``__pycache__`` and later processes load it instead of compiling.
Each job has its own random stream (word2vec.c's linear congruential generator), seeded by
the caller. The entry points are :func:`build_table` (the vocabulary's hash table),
:func:`encode_text` (bytes -> word ids and sentence ends) and :func:`train_text` (tokenize
a job and train on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

MAX_EXP = np.float32(6.0)
"""Sigmoid arguments beyond +-MAX_EXP are treated as saturated (word2vec.c)."""
EXP_TABLE_SIZE = 1000
_EXP_INDEX_SCALE = np.float32(EXP_TABLE_SIZE / (2 * 6.0))
_SIGMOID_TABLE = (
    1.0 / (1.0 + np.exp(-(np.arange(EXP_TABLE_SIZE) / EXP_TABLE_SIZE * 2 - 1) * 6.0))
).astype(np.float32)
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


# ----------------------------------------------------------------------------- arrays


@intrinsic
def _unowned_view(typingctx: Any, array: Any) -> Any:
    """The same array (data, shape, strides) without its owner (``meminfo``): numba's
    reference counting of it is then a null check, not an atomic add on the owner's
    count. Every worker thread shares ``syn0``, ``syn1neg``, ... and one owner count each,
    so counting references in the inner loops (numba does, each time an inlined helper
    binds an array) made the threads contend for those cache lines. The caller keeps the
    arrays alive."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        source = context.make_array(array)(context, builder, value=args[0])
        view = context.make_array(array)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(view, name, getattr(source, name))
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return array(array), codegen


_unowned = cast(Callable[[np.ndarray], np.ndarray], _unowned_view)  # as called in kernels


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
def build_table(word_bytes: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
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
def encode_text(
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
    syn0 = _unowned(syn0)  # shared by every thread: no reference counting (see _unowned)
    syn1neg, syn1, noise = _unowned(tables[0]), _unowned(tables[1]), _unowned(tables[2])
    codes, points, code_lengths = _unowned(tables[3]), _unowned(tables[4]), _unowned(tables[5])
    keep = _unowned(keep)
    words, sentence_ends = _unowned(words), _unowned(sentence_ends)
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
def train_text(
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
    words, sentence_ends = encode_text(text, word_bytes, offsets, table, max_sentence_length)
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

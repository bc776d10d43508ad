"""Count-based n-gram language models: add-k and interpolated (modified) Kneser-Ney.

Sentences are sequences of word ids. Each is scored as Mikolov's PTB setup (and SRILM)
does: ``<eos>`` is appended and predicted like any word, and the history of the first word
is a single ``<s>``, which is never predicted. So the model of order n predicts w_i from
h = w_{i-n+1} .. w_{i-1}, cut at ``<s>`` near the start of a sentence. ``V`` is the set of
predictable ids ``0 .. vocab_size - 1`` (``<eos>`` included, ``<s>`` not); ``<s>`` gets the
id ``vocab_size``.

Add-k (Lidstone; k = 1 is Laplace), of order n:

    P(w | h) = (c(h w) + k) / (c(h) + k |V|),        c(h) = sum_w c(h w)

Interpolated Kneser-Ney (Chen & Goodman 1999, eqs. 17-19), of order n, for k = 1 .. n:

    P_k(w | h) = (c_k(h w) - D_k(c_k(h w))) / c_k(h)  +  gamma_k(h) P_{k-1}(w | h')
    gamma_k(h) = (D_k,1 N_1(h .) + D_k,2 N_2(h .) + D_k,3+ N_3+(h .)) / c_k(h)
    P_0(w)     = 1 / |V|

where h' is h without its first word, c_k(h) = sum_w c_k(h w), N_j(h .) the number of words
w with c_k(h w) = j (N_3+: at least 3) and D(0) = 0. A history never seen before a word
(c_k(h) = 0) backs off completely: P_k(w | h) = P_{k-1}(w | h'). The counts c_k are

- the raw counts c(h w) at the highest order n, and for n-grams that start with ``<s>``
  (nothing can precede them);
- the continuation counts N_1+(. h w), the number of distinct words seen before h w, at the
  lower orders.

The discounts D_k are estimated per order from the count-of-counts n_j (the number of
k-grams whose c_k is exactly j):

- ``discount: modified`` (the default): modified Kneser-Ney, as SRILM's
  ``ngram-count -kndiscount -interpolate`` with no count cut-offs:
  Y = n_1 / (n_1 + 2 n_2), D_1 = 1 - 2 Y n_2 / n_1, D_2 = 2 - 3 Y n_3 / n_2,
  D_3+ = 3 - 4 Y n_4 / n_3;
- ``discount: D`` (a number in (0, 1]): the original interpolated Kneser-Ney, one fixed
  discount D_1 = D_2 = D_3+ = D at every order.

Every distribution sums to one over V for any history, whatever the discounts, because the
mass taken by the discounts is exactly what gamma_k(h) hands to the lower order.

Storage: the k-grams seen in training (every order k = 1 .. n) are kept as sorted int64 keys
``prefix * (|V| + 1) + w``, where ``prefix`` is the index of the (k-1)-gram h in the sorted
keys of order k - 1 (0 for the empty history), next to their counts c_k (raw counts for
add-k). Everything else is derived from those arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import safetensors.numpy
import torch
from safetensors import SafetensorError

from seqlab.decode import filter_logits
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.io import atomic_write_bytes

MAX_ORDER = 5
_FORMAT = "seqlab.ngram/1"

IntArray = np.ndarray  # int64 arrays (ids, keys, counts)
FloatArray = np.ndarray  # float64 arrays (probabilities, totals)


@dataclass(frozen=True)
class AddKConfig:
    """Add-k smoothing of the order-``order`` relative frequencies (k = 1: Laplace)."""

    name: str = "add_k"
    order: int = 2
    k: float = 1.0

    def validate(self) -> None:
        _check_order(self.order)
        if not self.k > 0:
            raise ConfigError(f"model.k must be > 0, got {self.k}")


@dataclass(frozen=True)
class KneserNeyConfig:
    """Interpolated Kneser-Ney; ``discount: modified`` estimates D_1, D_2, D_3+ per order."""

    name: str = "kneser_ney"
    order: int = 5
    discount: float | Literal["modified"] = "modified"
    """``modified`` (Chen & Goodman, SRILM -kndiscount) or one fixed discount in (0, 1]."""

    def validate(self) -> None:
        _check_order(self.order)
        if self.discount != "modified" and not 0.0 < float(self.discount) <= 1.0:
            raise ConfigError(
                f"model.discount must be 'modified' or in (0, 1], got {self.discount}"
            )


NGramConfig = AddKConfig | KneserNeyConfig
_CONFIGS: dict[str, type[AddKConfig] | type[KneserNeyConfig]] = {
    "add_k": AddKConfig,
    "kneser_ney": KneserNeyConfig,
}


def _check_order(order: int) -> None:
    if not 1 <= order <= MAX_ORDER:
        raise ConfigError(f"model.order must be in 1..{MAX_ORDER}, got {order}")


@dataclass
class _Queries:
    """Words to score, each with its history: ``history[k]`` is the index of its last k
    tokens in the order-k keys (-1: unseen, or reaching before ``<s>``); ``usable`` is the
    highest order its history allows, min(n, 1 + the tokens before it, ``<s>`` included)."""

    history: list[IntArray]
    usable: IntArray
    words: IntArray


class NGramLM:
    """An n-gram language model over word ids ``0 .. vocab_size - 1`` (see the module doc).

    ``fit`` counts, ``logprob`` / ``sentence_logprob`` / ``perplexity`` score (natural
    logarithms), ``distribution`` gives P(. | context), ``generate`` samples, and
    ``save`` / ``load`` keep the counts in a safetensors file.
    """

    def __init__(self, config: NGramConfig, vocab_size: int, eos: int) -> None:
        config.validate()
        if vocab_size < 1 or not 0 <= eos < vocab_size:
            raise ConfigError(f"need 0 <= eos < vocab_size, got eos={eos}, size={vocab_size}")
        self.config = config
        self.order = config.order
        self.vocab_size = vocab_size
        self.eos = eos
        self.bos = vocab_size
        self._base = vocab_size + 1
        self._keys: list[IntArray] = []
        self._counts: list[IntArray] = []
        self._totals: list[FloatArray] = []
        self._gammas: list[FloatArray] = []
        self.discounts: list[tuple[float, float, float]] = []
        """Per order k = 1 .. n: (D_1, D_2, D_3+); zeros for add-k."""

    # ------------------------------------------------------------------ fitting

    def fit(self, sentences: Iterable[Sequence[int]]) -> NGramLM:
        """Count the n-grams of ``sentences`` (ids without ``<eos>``) and estimate."""
        tokens, depth = self._stream(sentences)
        keys, ids = self._count_windows(tokens, depth)
        raw = [np.bincount(i[i >= 0], minlength=len(k)) for k, i in zip(keys, ids, strict=True)]
        raw[0][keys[0] == self.bos] = 0  # <s> is a history, never a predicted unigram
        if isinstance(self.config, KneserNeyConfig):
            counts = _kneser_ney_counts(raw, ids, depth)
        else:
            counts = raw
        self._set_tables(keys, counts)
        return self

    def _count_windows(
        self, tokens: IntArray, depth: IntArray
    ) -> tuple[list[IntArray], list[IntArray]]:
        """Sorted unique keys of every order and, per position, the index of the k-gram
        ending there (-1 where it would reach before ``<s>``)."""
        keys: list[IntArray] = []
        ids: list[IntArray] = []
        previous = np.zeros_like(tokens)
        for k in range(1, self.order + 1):
            key, valid = self._window_keys(previous, tokens, depth, k)
            unique, inverse = np.unique(key[valid], return_inverse=True)
            current = np.full_like(tokens, -1)
            current[valid] = inverse
            keys.append(unique)
            ids.append(current)
            previous = current
        return keys, ids

    def _set_tables(self, keys: list[IntArray], counts: list[IntArray]) -> None:
        """Store the counts and derive c_k(h), gamma_k(h) and the discounts of each order."""
        self._keys, self._counts = keys, counts
        self._totals, self._gammas, self.discounts = [], [], []
        for k in range(1, self.order + 1):
            count = counts[k - 1]
            prefix = keys[k - 1] // self._base
            n_histories = len(keys[k - 2]) if k > 1 else 1
            total = np.bincount(prefix, count, n_histories).astype(np.float64)  # c_k(h)
            discount = self._discounts(count, k)
            taken = _discount_of(count, discount)
            mass = np.bincount(prefix, taken, n_histories).astype(np.float64)  # gamma c_k(h)
            self._totals.append(total)
            self._gammas.append(np.divide(mass, total, out=np.zeros_like(mass), where=total > 0))
            self.discounts.append(discount)

    def _discounts(self, counts: IntArray, order: int) -> tuple[float, float, float]:
        if not isinstance(self.config, KneserNeyConfig):
            return (0.0, 0.0, 0.0)
        if self.config.discount != "modified":
            fixed = float(self.config.discount)
            return (fixed, fixed, fixed)
        return modified_kn_discounts(counts, order)

    # ------------------------------------------------------------------ scoring

    def _stream(self, sentences: Iterable[Sequence[int]]) -> tuple[IntArray, IntArray]:
        """All sentences as one id stream ``<s> w_1 .. w_m <eos> <s> ...`` and, per position,
        its depth (the number of tokens before it in its sentence, ``<s>`` included)."""
        flat: list[int] = []
        lengths: list[int] = []
        for sentence in sentences:
            flat.append(self.bos)
            flat.extend(sentence)
            flat.append(self.eos)
            lengths.append(len(sentence) + 2)
        if not lengths:
            raise DataError("no sentences (empty corpus)")
        tokens = np.asarray(flat, dtype=np.int64)
        starts = np.cumsum([0, *lengths[:-1]], dtype=np.int64)
        depth = np.arange(len(tokens), dtype=np.int64) - np.repeat(starts, lengths)
        words = tokens[depth > 0]
        if words.size and (words.min() < 0 or words.max() >= self.vocab_size):
            bad = int(words[(words < 0) | (words >= self.vocab_size)][0])
            raise DataError(f"word id {bad} is outside the vocabulary of {self.vocab_size}")
        return tokens, depth

    def _window_keys(
        self, previous: IntArray, tokens: IntArray, depth: IntArray, k: int
    ) -> tuple[IntArray, IntArray]:
        """Keys of the k-grams ending at each position, from the (k-1)-gram indices
        ``previous``, and where those k-grams exist (no ``<s>`` crossing, prefix seen)."""
        prefix = previous if k == 1 else np.concatenate([[-1], previous[:-1]])
        valid = (depth >= k - 1) & (prefix >= 0)
        return prefix * self._base + tokens, valid

    def _lookup(self, k: int, key: IntArray, valid: IntArray) -> IntArray:
        """Index of each key in the order-k keys, -1 if not ``valid`` or never seen."""
        table = self._keys[k - 1]
        if table.size == 0:
            return np.full_like(key, -1)
        where = np.searchsorted(table, key)
        clipped = np.minimum(where, table.size - 1)
        found = valid & (where < table.size) & (table[clipped] == key)
        return np.where(found, clipped, -1)

    def _window_ids(self, tokens: IntArray, depth: IntArray) -> list[IntArray]:
        """Per order k = 1 .. n-1, the index of the k-gram ending at each position."""
        ids: list[IntArray] = []
        previous = np.zeros_like(tokens)
        for k in range(1, self.order):
            key, valid = self._window_keys(previous, tokens, depth, k)
            previous = self._lookup(k, key, valid)
            ids.append(previous)
        return ids

    def _stream_queries(self, tokens: IntArray, depth: IntArray) -> _Queries:
        self._check_fitted()
        positions = np.flatnonzero(depth > 0)
        windows = self._window_ids(tokens, depth)
        history = [np.zeros_like(positions)] + [w[positions - 1] for w in windows]
        usable = np.minimum(depth[positions], self.order - 1) + 1
        return _Queries(history, usable, tokens[positions])

    def _context_queries(self, context: Sequence[int], words: IntArray) -> _Queries:
        self._check_fitted()
        tokens, depth = self._stream([context])
        last = len(context)  # position of the context's last token (<s> if empty)
        windows = self._window_ids(tokens, depth)
        history = [np.zeros_like(words)] + [np.full_like(words, w[last]) for w in windows]
        usable = np.full_like(words, min(last + 2, self.order))
        return _Queries(history, usable, words)

    def _probs(self, queries: _Queries) -> FloatArray:
        """P(word | history) of each query (the formulas of the module doc)."""
        p: FloatArray = np.full(queries.words.shape, 1.0 / self.vocab_size)
        add_k = self.config.k if isinstance(self.config, AddKConfig) else None
        for k in range(1, self.order + 1):
            history = queries.history[k - 1]
            seen = history >= 0
            ngram = self._lookup(k, history * self._base + queries.words, seen)
            count = _take(self._counts[k - 1], ngram, 0)
            total = _take(self._totals[k - 1], history, 0.0)
            if add_k is not None:
                estimate = (count + add_k) / (total + add_k * self.vocab_size)
                p = np.where(queries.usable == k, estimate, p)
                continue
            discounted = count - _discount_of(count, self.discounts[k - 1])
            gamma = _take(self._gammas[k - 1], history, 0.0)
            estimate = discounted / np.where(total > 0, total, 1.0) + gamma * p
            p = np.where(total > 0, estimate, p)  # history -1 (unseen, before <s>): total 0
        return p

    def logprob(self, word: int, context: Sequence[int] = ()) -> float:
        """ln P(word | <s> context): ``context`` is the sentence so far (ids)."""
        if not 0 <= word < self.vocab_size:
            raise DataError(f"word id {word} is outside the vocabulary of {self.vocab_size}")
        return math.log(float(self._probs(self._context_queries(context, np.array([word])))[0]))

    def distribution(self, context: Sequence[int] = ()) -> FloatArray:
        """(|V|,) P(. | <s> context) over the whole vocabulary; sums to 1."""
        return self._probs(self._context_queries(context, np.arange(self.vocab_size)))

    def total_logprob(self, sentences: Iterable[Sequence[int]]) -> tuple[float, int]:
        """(sum of ln P over every word and <eos> of ``sentences``, number of them)."""
        tokens, depth = self._stream(sentences)
        probs = self._probs(self._stream_queries(tokens, depth))
        return float(np.log(probs).sum()), int(probs.size)

    def sentence_logprob(self, sentence: Sequence[int]) -> float:
        """ln P(w_1 .. w_m <eos> | <s>)."""
        return self.total_logprob([sentence])[0]

    def perplexity(self, sentences: Iterable[Sequence[int]]) -> tuple[float, int]:
        """(exp(-(1/N) sum ln P), N) over the N words and <eos> tokens of ``sentences``."""
        total, n = self.total_logprob(sentences)
        return math.exp(-total / n), n

    def generate(
        self,
        prefix: Sequence[int],
        n: int,
        rng: np.random.Generator,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
    ) -> Iterator[int]:
        """Yield ``n`` sampled ids after ``prefix``; after ``<eos>`` a new sentence starts.

        Each id is drawn from P(. | sentence so far) ** (1 / temperature), renormalised and
        restricted to the ``top_k`` most probable ids and the nucleus of mass ``top_p``
        (``seqlab.decode.filter_logits``); ``temperature == 0`` is greedy.
        """
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        history = list(prefix)
        if self.eos in history:
            history = history[len(history) - history[::-1].index(self.eos) :]
        for _ in range(n):
            logp = np.log(self.distribution(history))
            if temperature == 0:
                word = int(logp.argmax())
            else:
                logits = torch.from_numpy(logp / temperature).unsqueeze(0)
                kept = filter_logits(logits, top_k, top_p)[0].numpy()
                weights = np.exp(kept - kept.max())
                word = int(rng.choice(self.vocab_size, p=weights / weights.sum()))
            yield word
            history = [] if word == self.eos else [*history, word]

    # ------------------------------------------------------------------ inspection, I/O

    def num_ngrams(self) -> list[int]:
        """Number of distinct k-grams (k = 1 .. n) with a nonzero count."""
        return [int(np.count_nonzero(c)) for c in self._counts]

    def _check_fitted(self) -> None:
        if not self._keys:
            raise ConfigError("the n-gram model is not fitted yet; call fit first")

    def save(self, path: str | Path) -> None:
        """Write the config, keys and counts as safetensors, atomically."""
        self._check_fitted()
        tensors = {f"keys_{k + 1}": keys for k, keys in enumerate(self._keys)}
        tensors |= {f"counts_{k + 1}": counts for k, counts in enumerate(self._counts)}
        metadata = {
            "format": _FORMAT,
            "config": json.dumps(asdict(self.config)),
            "vocab_size": str(self.vocab_size),
            "eos": str(self.eos),
        }
        atomic_write_bytes(Path(path), safetensors.numpy.save(tensors, metadata))

    @classmethod
    def load(cls, path: str | Path) -> NGramLM:
        """Read a model written by ``save``; a missing or foreign file is a RunDirError."""
        path = Path(path)
        if not path.is_file():
            raise RunDirError(f"{path}: no n-gram model here; train first or check the run dir")
        try:
            with safetensors.safe_open(str(path), framework="np") as handle:
                metadata = handle.metadata() or {}
            tensors = safetensors.numpy.load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise RunDirError(f"{path}: unreadable n-gram model ({err})") from err
        if metadata.get("format") != _FORMAT:
            raise RunDirError(f"{path}: not a seqlab n-gram model (expected {_FORMAT})")
        try:
            raw = json.loads(metadata["config"])
            config = _CONFIGS[raw["name"]](**raw)
            model = cls(config, int(metadata["vocab_size"]), int(metadata["eos"]))
            orders = range(1, config.order + 1)
            keys = [tensors[f"keys_{k}"] for k in orders]
            counts = [tensors[f"counts_{k}"] for k in orders]
        except (KeyError, TypeError, ValueError) as err:
            raise RunDirError(
                f"{path}: damaged n-gram model ({type(err).__name__}: {err})"
            ) from err
        model._set_tables(keys, counts)
        return model


def modified_kn_discounts(counts: IntArray, order: int) -> tuple[float, float, float]:
    """Chen & Goodman's D_1, D_2, D_3+ from the count-of-counts n_1 .. n_4 of ``counts``.

    A DataError when some n_j is zero or a discount comes out negative (too little data:
    use a fixed ``model.discount`` instead), as SRILM refuses to estimate then too.
    """
    n = [int(np.count_nonzero(counts == j)) for j in range(5)]
    if min(n[1:]) == 0:
        raise DataError(
            f"modified Kneser-Ney: order {order} has count-of-counts n1..n4 = {n[1:]}; "
            "every one must be > 0 to estimate D1, D2, D3+ (use a fixed model.discount, "
            "e.g. 0.75, or more data)"
        )
    y = n[1] / (n[1] + 2 * n[2])
    discounts = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
    if min(discounts) < 0:
        raise DataError(
            f"modified Kneser-Ney: order {order} discounts {discounts} include a negative one "
            "(use a fixed model.discount, e.g. 0.75, or more data)"
        )
    return discounts


def _take(values: np.ndarray, index: IntArray, fill: float) -> np.ndarray:
    """``values[index]`` where ``index >= 0``, ``fill`` elsewhere (``values`` may be empty)."""
    out = np.full(index.shape, fill, dtype=values.dtype)
    hit = index >= 0
    out[hit] = values[index[hit]]
    return out


def _discount_of(counts: IntArray, discounts: tuple[float, float, float]) -> FloatArray:
    """D(c) for each count: 0, D_1, D_2, D_3+ for c = 0, 1, 2, >= 3."""
    table = np.array([0.0, *discounts])
    return table[np.minimum(counts, 3)]


def _kneser_ney_counts(raw: list[IntArray], ids: list[IntArray], depth: IntArray) -> list[IntArray]:
    """c_k: raw counts at the highest order and for k-grams starting with ``<s>``,
    continuation counts N_1+(. h w) (distinct (k+1)-grams ending in h w) otherwise."""
    order = len(raw)
    counts = [raw[-1]]
    for k in range(order - 1, 0, -1):
        longer, shorter = ids[k], ids[k - 1]  # (k+1)-gram and k-gram ending at each position
        has_longer = longer >= 0
        suffix = np.zeros(len(raw[k]), dtype=np.int64)
        suffix[longer[has_longer]] = shorter[has_longer]  # suffix k-gram of each (k+1)-gram
        continuation = np.bincount(suffix, minlength=len(raw[k - 1]))
        after_bos = np.zeros(len(raw[k - 1]), dtype=bool)
        after_bos[shorter[depth == k - 1]] = True  # k-grams whose first token is <s>
        counts.insert(0, np.where(after_bos, raw[k - 1], continuation))
    return counts

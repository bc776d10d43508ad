"""Intrinsic evaluation of word vectors: analogies, word similarity, nearest neighbours.

The protocols follow gensim's ``KeyedVectors.evaluate_word_analogies`` and
``evaluate_word_pairs`` so numbers are comparable:

- only the ``restrict_vocab`` most frequent words take part (default 300,000), matched
  case-insensitively (the most frequent casing of a word stands for it);
- a question or pair with a word outside that vocabulary is out-of-vocabulary (OOV): it
  is counted and reported, and left out of the accuracy / correlation;
- analogy ``a : b :: c : d`` is answered by the nearest word to ``b - a + c`` (3CosAdd,
  Mikolov et al. 2013) or by ``argmax cos'(x, b) cos'(x, c) / (cos'(x, a) + 1e-6)`` with
  ``cos' = (1 + cos) / 2`` (3CosMul, Levy & Goldberg 2014), never one of ``a, b, c``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import stats

from seqlab.embeddings.vectors_io import WordVectors
from seqlab.errors import DataError, where

AnalogyMethod = Literal["add", "mul"]
RESTRICT_VOCAB = 300_000
_BATCH = 512
_COSMUL_EPS = 1e-6


# ----------------------------------------------------------------------------- analogies


@dataclass(frozen=True)
class SectionScore:
    """Analogy results of one ``: section`` of the questions file."""

    name: str
    correct: int
    incorrect: int
    oov: int

    @property
    def accuracy(self) -> float:
        answered = self.correct + self.incorrect
        return self.correct / answered if answered else 0.0


@dataclass(frozen=True)
class AnalogyResult:
    """Accuracy over the in-vocabulary questions, per section and in total."""

    method: AnalogyMethod
    sections: tuple[SectionScore, ...]

    @property
    def correct(self) -> int:
        return sum(s.correct for s in self.sections)

    @property
    def answered(self) -> int:
        return sum(s.correct + s.incorrect for s in self.sections)

    @property
    def oov(self) -> int:
        return sum(s.oov for s in self.sections)

    @property
    def accuracy(self) -> float:
        return self.correct / self.answered if self.answered else 0.0

    def subset_accuracy(self, syntactic: bool) -> float:
        """Accuracy over the syntactic (``gram*``) or the semantic sections."""
        chosen = [s for s in self.sections if s.name.startswith("gram") == syntactic]
        answered = sum(s.correct + s.incorrect for s in chosen)
        return sum(s.correct for s in chosen) / answered if answered else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "accuracy": self.accuracy,
            "semantic": self.subset_accuracy(syntactic=False),
            "syntactic": self.subset_accuracy(syntactic=True),
            "answered": float(self.answered),
            "oov": float(self.oov),
        }


def read_analogies(path: str | Path) -> Iterator[tuple[str, list[tuple[str, str, str, str]]]]:
    """Yield ``(section, questions)`` from a questions-words style file."""
    path = Path(path)
    section: str | None = None
    questions: list[tuple[str, str, str, str]] = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        if line.startswith(":"):
            if section is not None:
                yield section, questions
            section, questions = line[1:].strip(), []
            continue
        if not line.strip():
            continue
        words = line.split()
        if len(words) != 4:
            raise DataError(f"{where(path, line_no)}: expected 4 words, got {len(words)}")
        if section is None:
            raise DataError(f"{where(path, line_no)}: question before any ': section' line")
        questions.append((words[0], words[1], words[2], words[3]))
    if section is None:
        raise DataError(f"{path}: no ': section' lines; not an analogy questions file")
    yield section, questions


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason})") from None


class _Restricted:
    """The ``limit`` most frequent words, unit-normalized, with case-insensitive lookup.

    ``group[i]`` is the row that stands for word ``i``'s case-folded form (its most
    frequent casing); ``variants[row]`` lists the other casings of that form, so they can
    be excluded as answers together with the query word.
    """

    def __init__(self, wv: WordVectors, limit: int, case_insensitive: bool) -> None:
        self.words = wv.words[:limit]
        self.unit = wv.unit_vectors(limit)
        self.fold = str.upper if case_insensitive else str
        self.lookup: dict[str, int] = {}
        for i, word in enumerate(self.words):
            self.lookup.setdefault(self.fold(word), i)
        self.group = np.array([self.lookup[self.fold(w)] for w in self.words], dtype=np.int64)
        self.variants: dict[int, list[int]] = {}
        for row in np.flatnonzero(self.group != np.arange(len(self.words))).tolist():
            self.variants.setdefault(int(self.group[row]), []).append(row)

    def get(self, word: str) -> int | None:
        return self.lookup.get(self.fold(word))


def evaluate_analogies(
    wv: WordVectors,
    path: str | Path,
    *,
    method: AnalogyMethod = "add",
    restrict_vocab: int = RESTRICT_VOCAB,
    case_insensitive: bool = True,
) -> AnalogyResult:
    """Analogy accuracy on a questions-words file (gensim's protocol, module docstring)."""
    vocab = _Restricted(wv, restrict_vocab, case_insensitive)
    sections = []
    for name, questions in read_analogies(path):
        ids = [tuple(vocab.get(w) for w in q) for q in questions]
        known = np.array([i for i in ids if None not in i], dtype=np.int64).reshape(-1, 4)
        correct = 0
        for start in range(0, len(known), _BATCH):
            batch = known[start : start + _BATCH]
            predicted = _answer(vocab, batch[:, 0], batch[:, 1], batch[:, 2], method)
            correct += int((vocab.group[predicted] == batch[:, 3]).sum())
        sections.append(SectionScore(name, correct, len(known) - correct, len(ids) - len(known)))
    return AnalogyResult(method, tuple(sections))


def _scores(
    unit: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, method: AnalogyMethod
) -> np.ndarray:
    """(Q, V) scores of every word as the answer to ``a : b :: c : ?`` (row indices (Q,)):
    for 3CosAdd the cosine with ``b - a + c`` (unit vectors), for 3CosMul its formula."""
    if method == "add":
        query = unit[b] - unit[a] + unit[c]
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        return query @ unit.T
    cos_a, cos_b, cos_c = ((1 + unit[x] @ unit.T) / 2 for x in (a, b, c))
    return cos_b * cos_c / (cos_a + _COSMUL_EPS)


def _answer(
    vocab: _Restricted, a: np.ndarray, b: np.ndarray, c: np.ndarray, method: AnalogyMethod
) -> np.ndarray:
    """(Q,) best-scoring row for each question, excluding the query words (any casing)."""
    scores = _scores(vocab.unit, a, b, c, method)
    rows = np.arange(len(a))
    for query in (a, b, c):
        scores[rows, query] = -np.inf
        for q in np.flatnonzero(np.isin(query, list(vocab.variants))):
            scores[q, vocab.variants[int(query[q])]] = -np.inf
    return scores.argmax(axis=1)


# ----------------------------------------------------------------------------- similarity


@dataclass(frozen=True)
class SimilarityResult:
    """Correlation of cosine similarity with human judgements over in-vocabulary pairs."""

    spearman: float
    pearson: float
    pairs: int
    oov: int

    def as_dict(self) -> dict[str, float]:
        return {
            "spearman": self.spearman,
            "pearson": self.pearson,
            "pairs": float(self.pairs),
            "oov": float(self.oov),
        }


def read_word_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """``(word1, word2, score)`` from a tab-separated file; ``#`` lines are comments."""
    path = Path(path)
    pairs = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise DataError(
                f"{where(path, line_no)}: expected 'word1<TAB>word2<TAB>score', got {line!r}"
            )
        try:
            pairs.append((fields[0].strip(), fields[1].strip(), float(fields[2])))
        except ValueError:
            raise DataError(f"{where(path, line_no)}: bad score {fields[2]!r}") from None
    if not pairs:
        raise DataError(f"{path}: no word pairs")
    return pairs


def evaluate_similarity(
    wv: WordVectors,
    path: str | Path,
    *,
    restrict_vocab: int = RESTRICT_VOCAB,
    case_insensitive: bool = True,
) -> SimilarityResult:
    """Spearman and Pearson correlation on WordSim-353 / SimLex-999 style files."""
    vocab = _Restricted(wv, restrict_vocab, case_insensitive)
    gold, model = [], []
    oov = 0
    for word1, word2, score in read_word_pairs(path):
        i, j = vocab.get(word1), vocab.get(word2)
        if i is None or j is None:
            oov += 1
            continue
        gold.append(score)
        model.append(float(vocab.unit[i] @ vocab.unit[j]))
    if len(gold) < 3 or len(set(model)) < 2 or len(set(gold)) < 2:
        return SimilarityResult(math.nan, math.nan, len(gold), oov)
    spearman = float(stats.spearmanr(gold, model).statistic)
    pearson = float(stats.pearsonr(gold, model).statistic)
    return SimilarityResult(spearman, pearson, len(gold), oov)


# ----------------------------------------------------------------------------- queries


def find_word(wv: WordVectors, word: str) -> int:
    """Row of ``word``, falling back to its lowercase form (DataError if neither)."""
    for candidate in (word, word.lower()):
        if candidate in wv.index:
            return wv.index[candidate]
    raise DataError(f"{word!r} is not in the vocabulary of {len(wv)} words")


def _top(wv: WordVectors, scores: np.ndarray, exclude: set[int], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")
    picked = [int(i) for i in order[: k + len(exclude)] if int(i) not in exclude][:k]
    return [(wv.words[i], float(scores[i])) for i in picked]


def similarity(wv: WordVectors, first: str, second: str) -> float:
    """Cosine similarity of two words."""
    unit = wv.unit_vectors()
    return float(unit[find_word(wv, first)] @ unit[find_word(wv, second)])


def nearest_neighbours(wv: WordVectors, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` words with the highest cosine similarity to ``word`` (not itself)."""
    row = find_word(wv, word)
    unit = wv.unit_vectors()
    return _top(wv, unit @ unit[row], {row}, k)


def analogy(
    wv: WordVectors,
    positive: str,
    negative: str,
    plus: str,
    k: int = 5,
    method: AnalogyMethod = "add",
) -> list[tuple[str, float]]:
    """Words nearest to ``positive - negative + plus``: ``analogy(wv, "king", "man",
    "woman")`` asks "man is to king as woman is to ?" (queen). Query words are excluded."""
    a, b, c = (find_word(wv, w) for w in (negative, positive, plus))
    unit = wv.unit_vectors()
    scores = _scores(unit, np.array([a]), np.array([b]), np.array([c]), method)[0]
    return _top(wv, scores, {a, b, c}, k)

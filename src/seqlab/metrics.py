"""Sequence metrics that need no model: edit distance and error rates (digit, character
or word error rate, depending on what the sequences hold)."""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(hypothesis: Sequence[object], reference: Sequence[object]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions that turn
    ``hypothesis`` into ``reference`` (dynamic programming over one row, O(|h|·|r|))."""
    previous = list(range(len(reference) + 1))
    for i, item in enumerate(hypothesis, 1):
        current = [i]
        for j, wanted in enumerate(reference, 1):
            current.append(
                min(
                    previous[j] + 1,  # hypothesis item deleted
                    current[j - 1] + 1,  # reference item inserted
                    previous[j - 1] + (item != wanted),  # kept or substituted
                )
            )
        previous = current
    return previous[-1]


def error_rate(
    hypotheses: Sequence[Sequence[object]], references: Sequence[Sequence[object]]
) -> float:
    """Summed edit distance over the summed reference length (0 = perfect; can exceed 1)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("error rate of empty references")
    return sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True)) / total


def distinct_n(sentences: Sequence[Sequence[object]], n: int) -> float:
    """distinct-n (Li et al., 2016): the number of distinct n-grams over all sentences
    divided by the number of n-grams (0 when there are none). The share depends on how
    many sentences are pooled: compare sets of equal size."""
    grams = [tuple(s[i : i + n]) for s in sentences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0

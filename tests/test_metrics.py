"""Edit distance and error rates on strings whose answers are known by hand."""

from __future__ import annotations

import pytest

from seqlab.metrics import distinct_n, edit_distance, error_rate


@pytest.mark.parametrize(
    ("hypothesis", "reference", "distance"),
    [
        ("", "", 0),
        ("123", "123", 0),
        ("", "123", 3),  # three deletions
        ("123", "", 3),  # three insertions
        ("124", "123", 1),  # one substitution
        ("1234", "134", 1),
        ("kitten", "sitting", 3),
        ("4170", "417", 1),
        ("7140", "4170", 2),
    ],
)
def test_edit_distance(hypothesis: str, reference: str, distance: int) -> None:
    assert edit_distance(hypothesis, reference) == distance
    assert edit_distance(reference, hypothesis) == distance


def test_digit_error_rate_sums_over_references() -> None:
    # 1 substitution + 1 deletion + 0 over 3 + 2 + 5 reference digits
    assert error_rate(["129", "4", "56789"], ["123", "45", "56789"]) == pytest.approx(2 / 10)
    assert error_rate(["99999"], ["1"]) == pytest.approx(5.0)  # insertions can exceed 100%
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        error_rate(["1", "2"], ["1"])


def test_distinct_n_by_hand() -> None:
    sentences = [["a", "good", "film"], ["a", "good", "plot"], ["film"]]
    # unigrams: a good film a good plot film -> 7 tokens, 4 distinct
    assert distinct_n(sentences, 1) == pytest.approx(4 / 7)
    # bigrams: (a good) (good film) (a good) (good plot) -> 4, 3 distinct; "film" has none
    assert distinct_n(sentences, 2) == pytest.approx(3 / 4)
    assert distinct_n([["x"]], 2) == 0.0 and distinct_n([], 1) == 0.0

"""k-fold splits (``eval.folds``): stratified by label, a partition, deterministic by seed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.errors import ConfigError
from seqlab.tasks.bow_classify import split_indices, stratified_folds

# 3 classes of unequal size, interleaved so that contiguous folds would not be stratified
LABELS = ["neg"] * 61 + ["pos"] * 23 + ["neutral"] * 9
RNG_ORDER = np.random.default_rng(0).permutation(len(LABELS))
SHUFFLED = [LABELS[i] for i in RNG_ORDER]


@pytest.mark.parametrize("folds", [2, 3, 9])
def test_stratified_folds_partition_the_data_and_keep_class_shares(folds: int) -> None:
    parts = stratified_folds(SHUFFLED, folds, seed=7)
    joined = np.concatenate(parts)
    assert len(parts) == folds
    assert sorted(joined.tolist()) == list(range(len(SHUFFLED)))  # disjoint, union = all
    counts = Counter(SHUFFLED)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    for part in parts:
        in_fold = Counter(SHUFFLED[i] for i in part)
        for label, n_c in counts.items():
            # floor(n_c / k) or ceil(n_c / k): within one example of the class's share
            assert abs(in_fold[label] - n_c / folds) < 1, (label, in_fold, folds)


def test_stratified_folds_are_deterministic_by_seed_and_not_grouped_by_class() -> None:
    first = stratified_folds(SHUFFLED, 3, seed=7)
    again = stratified_folds(SHUFFLED, 3, seed=7)
    other = stratified_folds(SHUFFLED, 3, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    # within a fold the order is random, so a validation slice taken from its front mixes
    # the classes rather than taking one class only
    assert len({SHUFFLED[i] for i in first[0][:10]}) > 1


def test_split_indices_k_fold_with_labels_is_stratified_and_covers_every_example() -> None:
    n, folds = len(SHUFFLED), 3
    tests = []
    for fold in range(folds):
        idx = split_indices(n, folds, fold, 0.1, 0.1, 1234, SHUFFLED)
        train, val, test = idx["train"], idx["val"], idx["test"]
        assert len(set(train) | set(val) | set(test)) == len(train) + len(val) + len(test) == n
        neutral = sum(SHUFFLED[i] == "neutral" for i in test)
        assert neutral == 3  # 9 neutral examples over 3 folds
        tests.append(test)
    assert sorted(np.concatenate(tests).tolist()) == list(range(n))


def test_split_indices_without_labels_keeps_contiguous_folds_of_one_order() -> None:
    """Tasks without labels keep the former folds: contiguous runs of one seeded order."""
    order = np.random.default_rng(5).permutation(20)
    for fold, expected in enumerate(np.array_split(order, 4)):
        assert np.array_equal(split_indices(20, 4, fold, 0.1, 0.1, 5)["test"], expected)


def test_more_folds_than_examples_or_than_the_smallest_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="more than the 93 examples of the data"):
        stratified_folds(SHUFFLED, 94, seed=1)
    with pytest.raises(ConfigError, match="more than the 9 examples of label 'neutral'"):
        split_indices(len(SHUFFLED), 10, 0, 0.1, 0.1, 1, SHUFFLED)
    with pytest.raises(ConfigError, match="more than the 5 examples of the data"):
        split_indices(5, 6, 0, 0.1, 0.1, 1)


def test_cli_refuses_more_folds_than_a_class_has_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "reviews.tsv"
    data.write_text("".join(f"pos\tgood film {i}\n" for i in range(12)) + "neg\tbad\n" * 3)
    cfg = {
        "task": "classify",
        "data": {"dataset": str(data), "encoding": "utf-8"},
        "model": {"name": "cnn", "embedding_size": 8, "maps": 4, "widths": [1]},
        "eval": {"folds": 4},
    }
    (tmp_path / "cls.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(tmp_path / "cls.yaml"), "--out", str(run)])
    assert result.exit_code == 2, result.output
    assert "eval.folds = 4 is more than the 3 examples of label 'neg'" in result.output
    assert "Traceback" not in result.output

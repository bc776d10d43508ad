from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gensim")


@pytest.mark.slow
def test_word2vec_bench_meets_the_bar(shared_data: Path) -> None:
    """Issue 6: at least gensim's words/s, with quality within noise of gensim's."""
    if not (shared_data / "ptb" / "ptb.train.txt").is_file():
        pytest.skip("PTB is not in shared data")
    from seqlab.bench.word2vec import run

    result = run()
    assert result["speed_ratio"] >= 1.0
    for tag in ("", "cbow_"):
        analogy_gap = abs(result[f"seqlab_{tag}analogy"] - result[f"gensim_{tag}analogy"])
        assert analogy_gap < 0.01  # ~3% accuracy on ~4,600 answered questions
        assert abs(result[f"seqlab_{tag}ws353"] - result[f"gensim_{tag}ws353"]) < 0.06

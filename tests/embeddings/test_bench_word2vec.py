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
    assert result["speed_ratio_corpus_file"] > 0 and result["seqlab_scaling"] > 0
    assert result["git_commit"] and result["torch_version"] and result["cores"] >= 1
    for tag in ("", "cbow_"):
        analogy_gap = abs(result[f"seqlab_{tag}analogy"] - result[f"gensim_{tag}analogy"])
        assert analogy_gap < 0.01  # ~3% accuracy on ~4,600 answered questions
        assert abs(result[f"seqlab_{tag}ws353"] - result[f"gensim_{tag}ws353"]) < 0.06


def test_contenders_take_turns_going_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round starts one contender further along: every one goes first in turn."""
    from seqlab.bench import word2vec as bench
    from seqlab.embeddings.word2vec import Word2VecConfig

    order: list[tuple[str, int]] = []

    def fake(name: str, rate: float) -> object:
        def train(files: object, config: Word2VecConfig) -> object:
            order.append((name, config.seed))
            return bench._Run(rate, 0.0, 0.0)

        return train

    contenders = {"seqlab": fake("seqlab", 3.0), "gensim": fake("gensim", 1.0)}
    contenders["gensim_corpus_file"] = fake("gensim_corpus_file", 2.0)
    monkeypatch.setattr(bench, "CONTENDERS", contenders)
    files = bench._Files(Path("c"), Path("a"), Path("w"))
    result = bench._compare(files, Word2VecConfig(workers=1), repeats=3, tag="")
    firsts = [order[i] for i in (0, 3, 6)]
    assert firsts == [("seqlab", 1), ("gensim", 2), ("gensim_corpus_file", 3)]
    assert result["speed_ratio"] == 3.0 and result["speed_ratio_corpus_file"] == 1.5

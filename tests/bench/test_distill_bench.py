"""`seqlab bench distill` on a small labelled-lines file: both models run, the small CNN
student classifies faster than the BiLSTM teacher."""

from __future__ import annotations

from pathlib import Path

from seqlab.bench import distill as bench_distill

POS = ["a fine moving film", "great acting", "funny and wise", "a joy", "smart and lovely"]
NEG = ["a dull tired mess", "bad acting", "boring and stupid", "a chore", "dumb and tedious"]


def test_bench_distill_reports_the_students_speedup(tmp_path: Path) -> None:
    data = tmp_path / "reviews.tsv"
    lines = [f"pos\t{t}" for t in POS] + [f"neg\t{t}" for t in NEG]
    data.write_text("\n".join(lines * 10) + "\n", encoding="utf-8")
    overrides = [f"data.dataset={data}", "data.encoding=utf-8", "data.test_fraction=0.3"]
    result = bench_distill.run(rounds=1, overrides=overrides)
    assert result["test_sentences"] == 30 and result["rounds"] == 1
    assert result["teacher_parameters"] > 10 * result["student_parameters"]
    for key in ("teacher_sentences_per_s", "student_sentences_per_s_batch1"):
        assert result[key] > 0
    # a BiLSTM over 300-d embeddings against a 64-d CNN: not close
    assert result["student_speedup"] > 1.0 and result["student_speedup_batch1"] > 1.0
    assert {"date", "git_commit", "cpu", "load_avg_1m"} <= result.keys()

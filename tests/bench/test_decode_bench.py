"""`seqlab bench decode` on a fresh model: every rate measured, batched beam is faster."""

from __future__ import annotations

from pathlib import Path

from seqlab.bench import decode as bench_decode


def test_bench_decode_reports_rates_and_speedup(tmp_path: Path) -> None:
    result = bench_decode.run(run_dir=tmp_path / "no-run", sentences=4, single=4)
    assert result["trained"] is False and result["sentences"] == 4
    for key in ("greedy_sentences_per_s", "beam5_sentences_per_s", "beam5_single_sentences_per_s"):
        assert result[key] > 0
    # 4 sentences in one batch (eval_batch_size 100 / beam 5 = 20 a batch) vs 4 alone
    assert result["batched_beam_speedup"] > 1.5
    assert result["git_commit"] and result["cpu"] and result["torch_threads"] == 1

"""`seqlab bench lm` on two steps a side: both loops run and the JSON says what was timed."""

from __future__ import annotations

from pathlib import Path

from seqlab.bench import lm as bench_lm


def test_bench_lm_times_both_loops(shared_data: Path) -> None:
    result = bench_lm.run(steps=2, rounds=2)
    assert result["steps"] == 2 and result["rounds"] == 2
    assert result["seqlab_tokens_per_s"] > 0 and result["plain_tokens_per_s"] > 0
    assert result["speed_ratio"] > 0
    assert result["git_commit"] and result["torch_threads"] >= 1

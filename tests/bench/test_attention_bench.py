"""`seqlab bench attention --quick`: every pair runs and reports its ratio."""

from __future__ import annotations

from seqlab.bench import attention as bench_attention


def test_bench_attention_quick_reports_the_issue_keys() -> None:
    result = bench_attention.run(quick=True, device="cpu")
    for key in ("mha_ratio", "transformer_layer_ratio", "mha_explicit_ratio", "mha_causal_ratio"):
        ratio = result[key]
        assert isinstance(ratio, float) and 0.05 < ratio < 20, (key, ratio)
    assert [row["pair"] for row in result["table"]] == [  # type: ignore[attr-defined]
        "mha",
        "mha_explicit",
        "mha_causal",
        "transformer_layer",
    ]
    assert result["device"] == "cpu" and result["git_commit"] and result["date"]

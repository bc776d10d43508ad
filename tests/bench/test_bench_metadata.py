"""Every benchmark stores when, which code and which machine beside its numbers."""

from __future__ import annotations

import datetime

import torch

from seqlab.bench.metadata import bench_metadata


def test_bench_metadata_names_date_code_and_machine() -> None:
    meta = bench_metadata("cpu")
    when = datetime.datetime.fromisoformat(meta["date"])
    assert abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) < 60
    assert meta["torch_version"] == torch.__version__
    assert meta["torch_threads"] == torch.get_num_threads() and meta["cores"] >= 1
    assert meta["device"] == "cpu" and meta["cpu"]
    assert len(meta["git_commit"]) == 40 or meta["git_commit"] == "unknown"
    assert meta["load_avg_1m"] >= 0

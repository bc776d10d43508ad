"""Long-range tasks and the recurrent benchmarks: data generators, tiny quick runs (the full
runs are marked slow)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seqlab.bench import gradient_flow, long_range, recurrent
from seqlab.data.synthetic import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_task,
)


def test_adding_problem() -> None:
    x, y = adding_problem(2000, 30, torch.Generator().manual_seed(0))
    assert x.shape == (2000, 30, 2) and y.shape == (2000,)
    markers = x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((2000,), 2.0))
    assert torch.equal(markers[:, :15].sum(1), torch.ones(2000))  # one marker per half
    torch.testing.assert_close((x[..., 0] * markers).sum(1), y)
    # always predicting 1 scores the documented baseline
    assert abs(((y - 1.0) ** 2).mean().item() - ADDING_BASELINE_MSE) < 0.01
    again, _ = adding_problem(2000, 30, torch.Generator().manual_seed(0))
    assert torch.equal(again, x)


def test_copy_task() -> None:
    inputs, targets = copy_task(5, delay=20, length=4, num_symbols=3)
    assert inputs.shape == targets.shape == (5, 28)
    assert torch.equal(targets[:, -4:], inputs[:, :4])
    assert ((inputs[:, :4] >= 1) & (inputs[:, :4] <= 3)).all()
    assert (inputs[:, 23] == 4).all() and inputs[:, 4:23].eq(0).all() and inputs[:, 24:].eq(0).all()
    assert targets[:, :-4].eq(0).all()


def test_long_range_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    long_range.main(["--quick", "--json", "--task", "copy", "--model", "lstm_chrono"])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    (row,) = result["table"]
    assert row["task"] == "copy" and row["model"] == "lstm_chrono" and row["T"] == 10
    assert row["metric"] == "recall_ce" and 0 <= row["recall_acc"] <= 1
    assert row["baseline"] == pytest.approx(math.log(8), abs=1e-4)
    rows = long_range.run(quick=True, tasks=["adding"], models=["rnn_tanh", "lstm"])["table"]
    assert [row["model"] for row in rows] == ["rnn_tanh", "lstm"]  # type: ignore[index]
    assert all(row["metric"] == "mse" and row["test_loss"] >= 0 for row in rows)  # type: ignore[index]


def test_recurrent_bench_quick() -> None:
    result = recurrent.run(quick=True, device="cpu")
    for name in ("seqlab_fused", "explicit_lstm", "peephole_lstm", "gru", "rnn"):
        assert result[f"{name}_ratio"] > 0
        assert result[f"{name}_tokens_per_s"] > 0
    assert len(result["table"]) == 6  # type: ignore[arg-type]


def test_gradient_flow_bench_quick(tmp_path) -> None:
    result = gradient_flow.run(quick=True, figure=tmp_path / "flow.png")
    assert (tmp_path / "flow.png").stat().st_size > 0
    assert result["rnn_tanh_ratio"] < 1e-10  # vanished
    assert result["exploding_rnn_ratio"] > 1e3  # exploded
    assert result["exploding_rnn_clip_norm_1_ratio"] <= 1.0  # clipped


@pytest.mark.slow
def test_lstm_and_gru_solve_the_adding_problem_where_elman_fails() -> None:
    settings = long_range.Settings(train_steps=3000)
    models = ["rnn_tanh", "gru", "lstm"]
    rows = long_range.run(tasks=["adding"], models=models, lengths=[100], settings=settings)
    mse = {row["model"]: row["test_loss"] for row in rows["table"]}  # type: ignore[index, union-attr]
    assert mse["lstm"] < 0.1 * ADDING_BASELINE_MSE
    assert mse["gru"] < 0.1 * ADDING_BASELINE_MSE
    assert mse["rnn_tanh"] > 0.5 * ADDING_BASELINE_MSE

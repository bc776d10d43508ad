"""Gradient flow at T = 100: ||dL/dh_0|| / ||dL/dh_{T-1}|| per cell type.

The loss enters at the last step only, so the ratio says how much of the gradient
survives 99 steps back in time: ~1 it flows, << 1 it vanishes, >> 1 it explodes.

* ``fresh``: one layer of each cell (H = 64, torch's default initialisation), random input,
  L = sum of h_{T-1}, in float64 so that vanished gradients do not underflow. Keys
  ``<cell>_ratio``; ``lstm_forget_bias_1`` starts the forget gate's bias at 1.
* ``exploding``: an Elman RNN (tanh) whose W_hh is 2x an orthogonal matrix (W_ih scaled by
  0.1, so that tanh stays near its linear range), without and with clipping of dL/dh_t at
  every step of BPTT (``bptt_clip``: norm 1, value 0.01).
* ``trained`` (skipped by ``--quick``): the long-range benchmark's models (Elman RNN, GRU,
  LSTM with forget bias 1, LSTM with chrono init) trained on the adding problem at T = 100
  (:mod:`seqlab.bench.long_range`, stopping once solved or after ``train_steps``);
  L = the task's MSE on a batch, measured in float64. Keys ``trained_<model>_ratio``.

``python -m seqlab.bench.gradient_flow [--json] [--quick] [--figure PNG]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from seqlab.analysis.gradient_flow import (
    gradient_flow,
    plot_gradient_flow,
    recurrent_gradient_flow,
)
from seqlab.bench import long_range
from seqlab.bench.metadata import bench_metadata
from seqlab.bench.recurrent import print_report
from seqlab.nn.bptt import BpttClip
from seqlab.nn.recurrent import Mode, Recurrent

STEPS = 100
HIDDEN = 64
INPUT = 32
BATCH = 16
FRESH: tuple[tuple[str, Mode, float | None], ...] = (
    ("rnn_tanh", "rnn_tanh", None),
    ("rnn_relu", "rnn_relu", None),
    ("gru", "gru", None),
    ("lstm", "lstm", None),
    ("lstm_forget_bias_1", "lstm", 1.0),
    ("peephole_lstm", "peephole_lstm", None),
)
CLIPS: tuple[tuple[str, BpttClip | None], ...] = (
    ("exploding_rnn", None),
    ("exploding_rnn_clip_norm_1", ("norm", 1.0)),
    ("exploding_rnn_clip_value_0.01", ("value", 0.01)),
)
TRAINED = ("rnn_tanh", "gru", "lstm", "lstm_chrono")  # models of seqlab.bench.long_range


def _row(case: str, name: str, matrix: Tensor) -> dict[str, object]:
    first, last = matrix[0, 0].item(), matrix[0, -1].item()
    return {
        "case": case,
        "model": name,
        "grad_norm_t0": f"{first:.3g}",
        "grad_norm_tT": f"{last:.3g}",
        "ratio": float(f"{first / last:.3g}"),
    }


def _trained_flow(model_name: str, settings: long_range.Settings) -> Tensor:
    model, _ = long_range.train("adding", model_name, STEPS, settings)
    inputs, targets = long_range.batch("adding", 256, STEPS, torch.Generator().manual_seed(2))
    model, inputs, targets = model.double(), inputs.double(), targets.double()
    flows = gradient_flow(model, lambda: long_range.task_loss("adding", model(inputs), targets))
    return flows["rnn"]


def run(
    quick: bool = False, figure: str | Path | None = None, train_steps: int = 4000
) -> dict[str, object]:
    """Measure every case; draw the heatmaps to ``figure`` (PNG) if given."""
    # float64, so that a vanished gradient shows its size instead of underflowing to 0
    x = torch.randn(BATCH, STEPS, INPUT, generator=torch.Generator().manual_seed(0)).double()
    matrices: dict[str, Tensor] = {}
    rows = []
    for name, cell, forget_bias in FRESH:
        torch.manual_seed(0)
        rnn = Recurrent(cell, INPUT, HIDDEN, forget_bias=forget_bias).double()
        matrices[f"fresh {name}"] = recurrent_gradient_flow(rnn, x)
        rows.append(_row("fresh", name, matrices[f"fresh {name}"]))
    for name, clip in CLIPS:
        torch.manual_seed(0)
        rnn = Recurrent("rnn_tanh", INPUT, HIDDEN, bptt_clip=clip).double()
        with torch.no_grad():
            orthogonal, _ = torch.linalg.qr(torch.randn(HIDDEN, HIDDEN))
            rnn.get_parameter("weight_hh_l0").copy_(2.0 * orthogonal)
            rnn.get_parameter("weight_ih_l0").mul_(0.1)
        matrices[name.replace("_", " ")] = recurrent_gradient_flow(rnn, x)
        rows.append(_row("exploding", name, matrices[name.replace("_", " ")]))
    if not quick:
        settings = replace(long_range.Settings(), train_steps=train_steps)
        for model_name in TRAINED:
            name = f"trained on adding (T={STEPS}) {model_name}"
            matrices[name] = _trained_flow(model_name, settings)
            rows.append(_row("trained", model_name, matrices[name]))
    result: dict[str, object] = {"T": STEPS, "hidden_size": HIDDEN}
    for row in rows:
        prefix = "trained_" if str(row["case"]).startswith("trained") else ""
        result[f"{prefix}{row['model']}_ratio"] = row["ratio"]
    result["table"] = rows
    if figure is not None:
        title = f"||dL/dh_t||, loss at t = {STEPS - 1}"
        result["figure"] = str(plot_gradient_flow(matrices, figure, title))
    result.update(bench_metadata("cpu"))
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    parser.add_argument("--quick", action="store_true", help="skip the trained models")
    parser.add_argument("--figure", type=Path, help="write the heatmaps to this PNG")
    parser.add_argument("--train-steps", type=int, default=4000)
    args = parser.parse_args(argv)
    print_report(run(args.quick, args.figure, args.train_steps), args.json)


if __name__ == "__main__":
    main()

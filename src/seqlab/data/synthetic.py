"""Synthetic long-range tasks (Hochreiter & Schmidhuber, 1997; Arjovsky et al., 2016).

Both tasks hide the answer far back in the sequence, so a model solves them only if
information (and gradient) survives T steps. Each generator is deterministic given its
``torch.Generator``.
"""

from __future__ import annotations

import torch
from torch import Tensor

ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always predicting 1.0, the mean of the sum of two U(0, 1) numbers: Var = 2/12."""


def adding_problem(
    num_examples: int, steps: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The adding problem: ``x`` (N, T, 2), ``y`` (N,).

    Channel 0 holds T numbers drawn from U(0, 1); channel 1 marks two of them with 1.0,
    one in each half of the sequence. The target is the sum of the two marked numbers.
    """
    if steps < 2:
        raise ValueError(f"the adding problem needs at least 2 steps, got {steps}")
    values = torch.rand(num_examples, steps, generator=generator)
    half = steps // 2
    first = torch.randint(0, half, (num_examples,), generator=generator)
    second = torch.randint(half, steps, (num_examples,), generator=generator)
    markers = torch.zeros(num_examples, steps)
    rows = torch.arange(num_examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=2), target


def copy_task(
    num_examples: int,
    delay: int,
    length: int = 10,
    num_symbols: int = 8,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """The copying memory task: ``inputs``, ``targets`` token ids, each (N, delay + 2·length).

    Tokens: 0 blank, 1..num_symbols data, num_symbols + 1 the "recall" marker. The input is
    ``length`` random data symbols, ``delay - 1`` blanks, the marker, then ``length`` blanks;
    the target is blank everywhere except the last ``length`` steps, which must repeat the
    data symbols in order. The vocabulary has ``num_symbols + 2`` tokens.
    """
    if delay < 1 or length < 1:
        raise ValueError(f"copy task needs delay >= 1 and length >= 1, got {delay}, {length}")
    symbols = torch.randint(1, num_symbols + 1, (num_examples, length), generator=generator)
    total = delay + 2 * length
    inputs = torch.zeros(num_examples, total, dtype=torch.long)
    targets = torch.zeros(num_examples, total, dtype=torch.long)
    inputs[:, :length] = symbols
    inputs[:, length + delay - 1] = num_symbols + 1
    targets[:, -length:] = symbols
    return inputs, targets

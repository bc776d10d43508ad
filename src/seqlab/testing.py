"""The shared model battery (DESIGN.md, style rule 6), for every model's tests.

Each check asserts a behaviour that breaks when the model breaks: every parameter gets a
nonzero gradient; a padded batch gives the same outputs as the examples one at a time;
the model overfits a handful of examples; save/load gives identical outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqlab.contract import contract
from seqlab.train.checkpoint import load_weights, save_weights


def assert_all_parameters_get_gradient(model: nn.Module, batch: Any) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    contract(model).loss(batch).loss.backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))
    ]
    assert not missing, f"parameters without gradient: {missing}"


def assert_batch_equals_singles(
    outputs: Callable[[Any], torch.Tensor],
    batch: Any,
    singles: Sequence[Any],
    atol: float = 1e-5,
) -> None:
    """``outputs(batch)[i]`` (per-example outputs) equals ``outputs(singles[i])[0]``."""
    with torch.no_grad():
        together = outputs(batch)
        for i, single in enumerate(singles):
            alone = outputs(single)[0]
            got = together[i][..., : alone.shape[0]] if together[i].dim() else together[i]
            torch.testing.assert_close(got, alone, atol=atol, rtol=1e-4)


def assert_overfits(
    model: nn.Module, batch: Any, steps: int = 200, lr: float = 1e-2, below: float = 0.05
) -> float:
    """Adam on one small batch drives the loss below ``below``; returns the final loss."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss = float("inf")
    for _ in range(steps):
        optimizer.zero_grad()
        out = contract(model).loss(batch)
        out.loss.backward()
        optimizer.step()
        loss = float(out.loss.detach())
        if loss < below:
            break
    assert loss < below, f"did not overfit: loss {loss:.4f} >= {below}"
    return loss


def assert_save_load_identical(
    model: nn.Module,
    build: Callable[[], nn.Module],
    outputs: Callable[[nn.Module], torch.Tensor],
    tmp_path: Path,
) -> None:
    model.eval()
    path = tmp_path / "weights.safetensors"
    save_weights(path, model)
    other = build()
    load_weights(path, other)
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(outputs(other), outputs(model), atol=0, rtol=0)

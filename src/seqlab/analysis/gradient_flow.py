r"""Seeing vanishing and exploding gradients: ||dL/dh_t|| over time step x layer.

For every :class:`~seqlab.nn.recurrent.Recurrent` layer in a model, the matrix

.. code-block:: text

    G[l, t] = || dL/dh_t^l ||        (norm over batch, hidden units and directions)

where dL/dh_t^l is the whole gradient reaching the hidden state of layer l at step t —
through the output at t, the next time step and the next layer. In an Elman RNN it shrinks
geometrically as t moves away from where the loss is (vanishing) or grows (exploding); an
LSTM's cell state carries it across many steps. Values come from gradient taps
(:meth:`Recurrent.gradient_taps`), so the model runs its explicit path; with ``bptt_clip``
they show the gradient after clipping at each step.

* :func:`gradient_flow` — the matrices for any model and loss;
* :func:`recurrent_gradient_flow` — the matrix for one ``Recurrent`` and an input;
* :func:`plot_gradient_flow` — heatmaps, one panel per matrix, written as PNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import torch
from torch import Tensor, nn

from seqlab.nn.recurrent import Recurrent, State


def gradient_flow(model: nn.Module, loss_fn: Callable[[], Tensor]) -> dict[str, Tensor]:
    """Run ``loss_fn()`` (which calls ``model``) with gradient taps on every ``Recurrent``
    in ``model`` and return, per layer's qualified name (``"rnn"`` for ``model`` itself),
    the matrix (L, T) of ||dL/dh_t||. Several calls of one layer (a decoder stepping
    through time) are joined along T in call order. Parameter ``.grad``s are not touched.
    """
    layers = {
        name or "rnn": module
        for name, module in model.named_modules()
        if isinstance(module, Recurrent)
    }
    if not layers:
        raise ValueError(f"{type(model).__name__} contains no seqlab.nn.Recurrent layer")
    with ExitStack() as stack:
        taps = {name: stack.enter_context(layer.gradient_taps()) for name, layer in layers.items()}
        loss = loss_fn()
    if loss.dim() != 0:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    called = {name: tensors for name, tensors in taps.items() if tensors}
    flat = [tap for tensors in called.values() for tap in tensors]
    grads = iter(torch.autograd.grad(loss, flat, allow_unused=True, materialize_grads=True))
    result = {}
    for name, tensors in called.items():
        # each tap (L, D, B, T, H) -> (L, T): norm over directions, batch and hidden units
        norms = [next(grads).pow(2).sum((1, 2, 4)).sqrt() for _ in tensors]
        result[name] = torch.cat(norms, 1).detach()
    return result


def recurrent_gradient_flow(
    rnn: Recurrent,
    input: Tensor,
    loss_fn: Callable[[Tensor, State], Tensor] | None = None,
    lengths: Tensor | Sequence[int] | None = None,
) -> Tensor:
    """||dL/dh_t|| (L, T) for ``rnn`` run on ``input``. ``loss_fn(output, state)`` defaults
    to the sum of the output at the last step, so the gradient enters at t = T-1 only and
    the matrix shows how it survives the trip back to t = 0."""

    def loss() -> Tensor:
        output, state = rnn(input, lengths=lengths)
        if loss_fn is not None:
            return loss_fn(output, state)
        last = output[:, -1] if rnn.batch_first else output[-1]
        return last.sum()

    return gradient_flow(rnn, loss)["rnn"]


def plot_gradient_flow(
    matrices: Mapping[str, Tensor] | Tensor,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw each (L, T) matrix as a heatmap of log10 ||dL/dh_t|| (time step across, layer
    up; one colour scale for all panels, so they compare) and save a PNG at ``path``."""
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    panels = {"": matrices} if isinstance(matrices, Tensor) else dict(matrices)
    if not panels:
        raise ValueError("nothing to plot: no gradient-flow matrices given")
    logs = {}
    for name, matrix in panels.items():
        if matrix.dim() != 2:
            raise ValueError(f"{name or 'matrix'} must be (layers, T), got {tuple(matrix.shape)}")
        tiny = torch.finfo(torch.float64).tiny
        logs[name] = matrix.detach().double().cpu().clamp_min(tiny).log10().numpy()
    high = max(float(m.max()) for m in logs.values())
    low = max(min(float(m.min()) for m in logs.values()), high - 40.0)
    if math.isclose(low, high):
        low -= 1.0
    norm = Normalize(vmin=low, vmax=high)

    fig = Figure(figsize=(8, 1.0 + 0.9 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    image = None
    for ax, (name, values) in zip(axes, logs.items(), strict=True):
        layers, steps = values.shape
        image = ax.imshow(
            values, aspect="auto", origin="lower", cmap="magma", norm=norm, interpolation="nearest"
        )
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("layer")
        ax.set_yticks(range(layers))
        ax.set_xlim(-0.5, steps - 0.5)
    axes[-1].set_xlabel("time step t")
    assert image is not None
    fig.colorbar(image, ax=list(axes), label="log10 ||dL/dh_t||")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path

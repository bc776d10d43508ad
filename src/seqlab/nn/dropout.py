"""Locked (variational) dropout: one mask per sequence, shared by every time step.

Standard dropout draws a fresh mask at every step, so over a long sequence every unit is
dropped somewhere and the noise averages out. Locked dropout (Gal & Ghahramani, 2016;
Merity et al., 2018, "AWD-LSTM") drops the same units at all steps of a sequence:

.. code-block:: text

    m ~ Bernoulli(1 - p)^(B, 1, D) / (1 - p)        one mask per sequence and feature
    y_t = x_t ⊙ m                                    for every t

At evaluation time it is the identity.
"""

from __future__ import annotations

from torch import Tensor, nn


def locked_dropout(input: Tensor, p: float, training: bool, batch_first: bool = True) -> Tensor:
    """Apply one dropout mask per sequence to ``input`` (B, T, D), or (T, B, D) when
    ``batch_first`` is False."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return input
    if input.dim() != 3:
        raise ValueError(f"locked dropout expects a 3-D input, got {tuple(input.shape)}")
    features = input.size(2)
    shape = (input.size(0), 1, features) if batch_first else (1, input.size(1), features)
    mask = input.new_empty(shape).bernoulli_(1.0 - p) / (1.0 - p)
    return input * mask


class LockedDropout(nn.Module):
    """Module form of :func:`locked_dropout`: ``(B, T, D) -> (B, T, D)``."""

    def __init__(self, p: float = 0.5, batch_first: bool = True) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.batch_first = batch_first

    def forward(self, input: Tensor) -> Tensor:
        return locked_dropout(input, self.p, self.training, self.batch_first)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}"

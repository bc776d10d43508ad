r"""Pool a masked sequence (B, T, H) into one vector per sequence (B, H).

* ``last_state``: the output at each sequence's true last step; for a bidirectional
  output (B, T, 2·H) the forward half at the last step and the backward half at step 0
  (where the backward direction has read the whole sequence).
* ``mean_pool`` / ``max_pool``: over the real steps only.
* ``AttentionPooling``: ``a_t = softmax_t(v^T tanh(W h_t + b))``, ``sum_t a_t h_t``
  (Yang et al., 2016), padded steps get zero weight.

``mask`` (B, T) is True at real steps; every sequence has at least one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def last_state(output: Tensor, lengths: Tensor, bidirectional: bool = False) -> Tensor:
    """``output`` (B, T, D·H), ``lengths`` (B,) -> (B, D·H)."""
    last = (lengths.to(output.device) - 1).clamp(min=0)  # (B,)
    rows = torch.arange(output.shape[0], device=output.device)
    at_end = output[rows, last]  # (B, D·H)
    if not bidirectional:
        return at_end
    hidden = output.shape[2] // 2
    return torch.cat([at_end[:, :hidden], output[:, 0, hidden:]], dim=1)


def mean_pool(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over real steps: ``values`` (B, T, H), ``mask`` (B, T) -> (B, H)."""
    weights = mask.to(values.dtype).unsqueeze(2)  # (B, T, 1)
    return (values * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def max_pool(values: Tensor, mask: Tensor) -> Tensor:
    """Max over real steps: ``values`` (B, T, H), ``mask`` (B, T) -> (B, H)."""
    return values.masked_fill(~mask.unsqueeze(2), float("-inf")).max(dim=1).values


class AttentionPooling(nn.Module):
    """Additive attention pooling with a learned query ``v`` (A,) over ``W`` (A, H)."""

    def __init__(self, input_size: int, attention_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(input_size, attention_size)
        self.query = nn.Linear(attention_size, 1, bias=False)

    def weights(self, values: Tensor, mask: Tensor) -> Tensor:
        """Attention weights (B, T), zero at padding, summing to 1 per row."""
        scores = self.query(torch.tanh(self.proj(values))).squeeze(2)  # (B, T)
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        """``values`` (B, T, H), ``mask`` (B, T) -> (B, H)."""
        return torch.bmm(self.weights(values, mask).unsqueeze(1), values).squeeze(1)

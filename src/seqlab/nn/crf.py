r"""Linear-chain conditional random field over emission scores (Lafferty et al., 2001).

.. code-block:: text

    score(x, y) = start[y_1] + sum_t emit[t, y_t] + sum_{t>1} trans[y_{t-1}, y_t] + end[y_T]
    p(y | x)    = exp(score(x, y)) / Z(x),     Z(x) = sum_{y'} exp(score(x, y'))

``log Z`` comes from the forward algorithm (alpha recursion in log space) and the best
tag sequence from Viterbi; both run over the whole batch at once and skip padded steps,
so a padded batch gives the same numbers as its sequences one at a time.

Shapes: B batch, T time, K tags. ``mask`` (B, T) is True at real tokens; each row is a
prefix of ones (left-aligned sequences) with at least one True.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlab.errors import DataError


class CRF(nn.Module):
    """Transition scores ``transitions[i, j]`` (from tag i to tag j), ``start`` and ``end``."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise DataError(f"a CRF needs at least one tag, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # (K, K)
        self.start = nn.Parameter(torch.empty(num_tags))  # (K,)
        self.end = nn.Parameter(torch.empty(num_tags))  # (K,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for param in (self.transitions, self.start, self.end):
            nn.init.uniform_(param, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    @staticmethod
    def _check(emissions: Tensor, mask: Tensor) -> None:
        if emissions.dim() != 3 or mask.shape != emissions.shape[:2]:
            raise DataError(
                f"CRF expects emissions (B, T, K) and mask (B, T), got "
                f"{tuple(emissions.shape)} and {tuple(mask.shape)}"
            )
        if not bool(mask[:, 0].all()):
            raise DataError("CRF: every sequence needs at least one token (mask[:, 0] all True)")

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Unnormalised score of ``tags`` (B, T) under ``emissions`` (B, T, K): (B,)."""
        self._check(emissions, mask)
        maskf = mask.to(emissions.dtype)  # (B, T)
        safe = tags.masked_fill(~mask, 0)  # (B, T) padded tags point at tag 0, weighted by 0
        emit = emissions.gather(2, safe.unsqueeze(2)).squeeze(2)  # (B, T)
        total = self.start[safe[:, 0]] + (emit * maskf).sum(1)  # (B,)
        trans = self.transitions[safe[:, :-1], safe[:, 1:]]  # (B, T-1)
        total = total + (trans * maskf[:, 1:]).sum(1)
        last = mask.long().sum(1) - 1  # (B,)
        return total + self.end[safe.gather(1, last.unsqueeze(1)).squeeze(1)]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """``log Z(x)`` (B,) by the forward algorithm."""
        self._check(emissions, mask)
        alpha = self.start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            # (B, K, 1) + (K, K) + (B, 1, K) -> logsumexp over the previous tag -> (B, K)
            step = torch.logsumexp(
                alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1
            )
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Negative log-likelihood ``log Z(x) - score(x, y)`` of each sequence: (B,)."""
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Viterbi: the highest-scoring tags (B, T) (long), 0 at padded steps."""
        self._check(emissions, mask)
        batch, steps, _ = emissions.shape
        delta = self.start + emissions[:, 0]  # (B, K)
        backpointers = []
        for t in range(1, steps):
            candidates = delta.unsqueeze(2) + self.transitions  # (B, K_prev, K)
            best, argbest = candidates.max(dim=1)  # (B, K)
            step = best + emissions[:, t]
            keep = mask[:, t].unsqueeze(1)
            delta = torch.where(keep, step, delta)
            # at padded steps point each tag at itself, so backtracking passes through
            identity = torch.arange(self.num_tags, device=emissions.device).expand(batch, -1)
            backpointers.append(torch.where(keep, argbest, identity))
        tag = (delta + self.end).argmax(dim=1)  # (B,)
        path = [tag]
        for pointers in reversed(backpointers):
            tag = pointers.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        tags = torch.stack(path[::-1], dim=1)  # (B, T)
        return tags.masked_fill(~mask, 0)

"""One-hot encoding and the lookup-table embedding it is equivalent to.

A word with id ``i`` in a vocabulary of ``V`` words is the one-hot row vector ``e_i``
(V,). Multiplying by a weight matrix ``W`` (V, E) selects row ``i``: ``e_i W = W[i]``.
An embedding layer is that product done as a table lookup, without building ``e_i``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def one_hot(ids: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot vectors of integer ``ids`` (*) -> (*, num_classes) of ``dtype``."""
    if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"ids must be an integer tensor, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
        raise ValueError(
            f"ids must be in [0, {num_classes}), got {int(ids.min())}..{int(ids.max())}"
        )
    return F.one_hot(ids.long(), num_classes).to(dtype)


class Embedding(nn.Embedding):
    """A learned lookup table: ``forward(ids)`` (*) -> (*, E) is ``weight[ids]``.

    Same arguments and behaviour as :class:`torch.nn.Embedding` (``weight`` is (V, E),
    ``padding_idx`` rows get no gradient); :meth:`one_hot_forward` computes the same
    result as the matrix product ``one_hot(ids) @ weight`` that the lookup replaces.
    """

    def one_hot_forward(self, ids: Tensor) -> Tensor:
        """``one_hot(ids) @ weight``: (*) -> (*, E), V times the work of ``forward``."""
        return one_hot(ids, self.num_embeddings, self.weight.dtype) @ self.weight

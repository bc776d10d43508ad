"""Attention, from the equations: the score functions of Bahdanau et al. (2015) and Luong
et al. (2015), scaled dot product and multi-head attention (Vaswani et al., 2017).

Shapes: B batch, Q queries, K keys, D/E feature sizes, H heads, d = E / H per head.

Mask convention everywhere: ``mask`` is a bool tensor, True where a key is real (attend to
it), False at padding. This is the opposite of torch.nn's ``key_padding_mask``; convert at
that boundary only.

.. code-block:: text

    dot          score(q, k) = q^T k                                   (Luong)
    scaled_dot   score(q, k) = q^T k / sqrt(D)                         (Vaswani)
    general      score(q, k) = q^T W k                                 (Luong "general")
    additive     score(q, k) = v^T tanh(W q + U k + b)                 (Bahdanau)
    a = masked_softmax(score(q, k_1..K))                               weights   (B, Q, K)
    c = sum_j a_j v_j                                                  context   (B, Q, Dv)

    MultiHead(Q, K, V) = Concat(head_1..head_H) W^O + b^O
    head_h = softmax(Q W^Q_h (K W^K_h)^T / sqrt(d) + mask) V W^V_h
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` of ``scores`` (..., K) where ``mask`` (broadcastable to scores,
    bool, True = real key) is True; masked keys get weight exactly 0.

    A row with no True key gives all zeros (no NaN, finite gradients).
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = real key), got {mask.dtype}")
    # the most negative finite value: exp(min - max) underflows to exactly 0 for a masked
    # key beside a real one; a fully masked row becomes uniform, then zeroed below.
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(filled, dim=dim)
    return weights * mask.to(weights.dtype)


class DotScore(nn.Module):
    """``score(q, k) = q^T k`` (Luong "dot"): query (B, Q, D), keys (B, K, D) -> (B, Q, K)."""

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(-2, -1)


class ScaledDotScore(nn.Module):
    """``score(q, k) = q^T k / sqrt(D)``: query (B, Q, D), keys (B, K, D) -> (B, Q, K)."""

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(-2, -1) / math.sqrt(query.size(-1))


class GeneralScore(nn.Module):
    """``score(q, k) = q^T W k`` (Luong "general", bilinear); W (query_size, key_size).

    query (B, Q, Dq), keys (B, K, Dk) -> (B, Q, K). ``project_keys`` computes ``W k``
    once per source.
    """

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(query_size, key_size))
        nn.init.xavier_uniform_(self.weight)

    def project_keys(self, keys: Tensor) -> Tensor:
        """keys (B, K, Dk) -> W k (B, K, Dq)."""
        return F.linear(keys, self.weight)

    def forward(self, query: Tensor, keys: Tensor, projected_keys: Tensor | None = None) -> Tensor:
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        return query @ projected_keys.transpose(-2, -1)


class AdditiveScore(nn.Module):
    """``score(q, k) = v^T tanh(W q + U k + b)`` (Bahdanau, the MLP score).

    W: ``query_proj`` (hidden, Dq), U and b: ``key_proj`` (hidden, Dk), v: ``v`` (1, hidden).
    query (B, Q, Dq), keys (B, K, Dk) -> (B, Q, K). ``U k + b`` does not depend on the
    query: compute it once per source with ``project_keys`` and pass it as
    ``projected_keys`` at every decoder step.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)
        self.key_proj = nn.Linear(key_size, hidden_size)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        """keys (B, K, Dk) -> U k + b (B, K, hidden)."""
        return self.key_proj(keys)

    def forward(self, query: Tensor, keys: Tensor, projected_keys: Tensor | None = None) -> Tensor:
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        hidden = torch.tanh(
            self.query_proj(query).unsqueeze(2) + projected_keys.unsqueeze(1)
        )  # (B, Q, K, hidden)
        return self.v(hidden).squeeze(-1)  # (B, Q, K)


def _same_size(name: str, query_size: int, key_size: int) -> None:
    if query_size != key_size:
        raise ValueError(
            f"attention score {name!r} needs query_size == key_size, "
            f"got {query_size} and {key_size} (use 'general' or 'additive')"
        )


def _dot(query_size: int, key_size: int, hidden_size: int | None) -> nn.Module:
    _same_size("dot", query_size, key_size)
    return DotScore()


def _scaled_dot(query_size: int, key_size: int, hidden_size: int | None) -> nn.Module:
    _same_size("scaled_dot", query_size, key_size)
    return ScaledDotScore()


def _general(query_size: int, key_size: int, hidden_size: int | None) -> nn.Module:
    return GeneralScore(query_size, key_size)


def _additive(query_size: int, key_size: int, hidden_size: int | None) -> nn.Module:
    return AdditiveScore(query_size, key_size, hidden_size or key_size)


# name -> build(query_size, key_size, hidden_size) -> score module
SCORES: dict[str, Callable[[int, int, int | None], nn.Module]] = {
    "dot": _dot,
    "scaled_dot": _scaled_dot,
    "general": _general,
    "additive": _additive,
}


class Attention(nn.Module):
    """Single-head attention with a score from :data:`SCORES`.

    forward(query (B, Q, Dq), keys (B, K, Dk), values (B, K, Dv) | None = keys,
    mask (B, K) bool | None) -> (context (B, Q, Dv), weights (B, Q, K)). Q = 1 for one
    decoder step. ``hidden_size`` is the additive score's hidden size (default key_size).
    """

    def __init__(
        self, score: str, query_size: int, key_size: int, hidden_size: int | None = None
    ) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"unknown attention score {score!r} (known: {', '.join(SCORES)})")
        self.score_name = score
        self.score = SCORES[score](query_size, key_size, hidden_size)

    def project_keys(self, keys: Tensor) -> Tensor | None:
        """What the score can precompute once per source (keys (B, K, Dk)); None for the
        scores without parameters. Pass it to ``forward`` as ``projected_keys``."""
        if isinstance(self.score, GeneralScore | AdditiveScore):
            return self.score.project_keys(keys)
        return None

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        if query.dim() != 3 or keys.dim() != 3:
            raise ValueError(
                f"Attention expects query (B, Q, D) and keys (B, K, D), "
                f"got {tuple(query.shape)} and {tuple(keys.shape)}"
            )
        if values is None:
            values = keys
        if projected_keys is not None:
            scores = self.score(query, keys, projected_keys)  # (B, Q, K)
        else:
            scores = self.score(query, keys)  # (B, Q, K)
        weights = masked_softmax(scores, None if mask is None else mask.unsqueeze(1))
        return weights @ values, weights  # (B, Q, Dv), (B, Q, K)


KeyValues = tuple[Tensor, Tensor]
"""Projected keys and values (B, H, K, d) each: a memory read at every step, or a
self-attention cache that grows by one position a step."""


def select_key_values(pairs: list[KeyValues], index: Tensor) -> list[KeyValues]:
    """Keep / reorder the batch rows of every (keys, values) pair by ``index`` (K,)."""
    return [(k.index_select(0, index), v.index_select(0, index)) for k, v in pairs]


class MultiHeadAttention(nn.Module):
    """Multi-head attention with ``torch.nn.MultiheadAttention``'s parameters (names, shapes,
    initialisation), batch first, so its ``state_dict`` loads into torch's and back.

    forward(query (B, Q, E), key (B, K, kdim), value (B, K, vdim), mask (B, K) bool | None,
    causal, need_weights) -> (output (B, Q, E), weights (B, H, Q, K) | None).

    ``causal``: query i attends keys j <= i (needs Q == K). Two paths with the same numbers:
    the explicit one written from the equations (always used with ``need_weights``) and, with
    ``fused=True``, ``F.scaled_dot_product_attention``. A query whose keys are all masked
    gets a zero context (torch's gives NaN), so its output is ``out_proj.bias``.
    """

    def __init__(
        self,
        embed_size: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if embed_size % num_heads != 0:
            raise ValueError(f"embed_size {embed_size} is not divisible by num_heads {num_heads}")
        self.embed_size = embed_size
        self.num_heads = num_heads
        self.head_size = embed_size // num_heads
        self.dropout = dropout
        self.fused = fused
        self.kdim = kdim if kdim is not None else embed_size
        self.vdim = vdim if vdim is not None else embed_size
        self.packed = self.kdim == embed_size and self.vdim == embed_size
        if self.packed:
            self.in_proj_weight: nn.Parameter | None = nn.Parameter(
                torch.empty(3 * embed_size, embed_size)
            )
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_size, embed_size))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_size, self.kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_size, self.vdim))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias: nn.Parameter | None = nn.Parameter(torch.empty(3 * embed_size))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_size, embed_size, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn.MultiheadAttention's initialisation: Xavier-uniform input projections,
        zero biases, ``out_proj.weight`` as nn.Linear."""
        if self.in_proj_weight is not None:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _weights(
        self,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """W^Q, W^K, W^V and their biases (None without bias)."""
        E = self.embed_size
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.split(E)
        if self.in_proj_weight is not None:
            w_q, w_k, w_v = self.in_proj_weight.split(E)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return w_q, w_k, w_v, b_q, b_k, b_v

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Q W^Q + b, K W^K + b, V W^V + b: (B, Q, E), (B, K, E), (B, K, E)."""
        if self.in_proj_weight is not None and query is key and key is value:
            # self-attention: one matrix product
            packed = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (B, Q, 3E)
            q, k, v = packed.chunk(3, dim=-1)
            return q, k, v
        w_q, w_k, w_v, b_q, b_k, b_v = self._weights()
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _heads(self, projected: Tensor) -> Tensor:
        """(B, T, E) -> (B, H, T, d)."""
        B, T, _ = projected.shape
        return projected.view(B, T, self.num_heads, self.head_size).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        if query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
            raise ValueError(
                "MultiHeadAttention expects batch-first (B, T, E) inputs, got "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        q, k, v = (self._heads(t) for t in self._project(query, key, value))  # (B, H, T, d)
        return self._attend(q, k, v, mask, causal, need_weights)

    # ------------------------------------------------- step-by-step decoding (caches)

    def project_memory(self, key: Tensor, value: Tensor) -> KeyValues:
        """The keys and values of a memory that many queries will read (the encoder output
        a decoder attends at every step), projected once: (B, H, K, d) each."""
        _, w_k, w_v, _, b_k, b_v = self._weights()
        return self._heads(F.linear(key, w_k, b_k)), self._heads(F.linear(value, w_v, b_v))

    def forward_memory(
        self,
        query: Tensor,
        memory: KeyValues,
        mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``forward(query, key, value, mask)`` with the keys and values already projected
        by :meth:`project_memory`."""
        w_q, _, _, b_q, _, _ = self._weights()
        q = self._heads(F.linear(query, w_q, b_q))
        return self._attend(q, memory[0], memory[1], mask, False, need_weights)

    def forward_cached(
        self,
        x: Tensor,
        cache: KeyValues | None = None,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None, KeyValues]:
        """Self-attention of x (B, T, E) that also returns its projected keys and values
        (B, H, t + T, d) for the next step. With a ``cache`` (those of the t earlier
        positions), T must be 1: the new position attends every earlier one and itself,
        which is the causal pass restricted to its row; ``mask`` (B, t + 1) then covers
        every position seen."""
        q, k, v = (self._heads(t) for t in self._project(x, x, x))  # (B, H, T, d)
        if cache is not None:
            if x.size(1) != 1:
                raise ValueError(f"a cached step takes one position at a time, got {x.size(1)}")
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            causal = False
        out, weights = self._attend(q, k, v, mask, causal, need_weights)
        return out, weights, (k, v)

    def _attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        causal: bool,
        need_weights: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Projected heads q (B, H, Q, d), k and v (B, H, K, d) -> (output (B, Q, E),
        weights (B, H, Q, K) | None)."""
        B, _, Q, _ = q.shape
        K = k.size(2)
        if causal and Q != K:
            raise ValueError(f"causal attention needs as many queries as keys, got {Q} and {K}")
        if mask is not None and (mask.dtype != torch.bool or mask.shape != (B, K)):
            raise ValueError(
                f"mask must be a bool (B, K) = {(B, K)} tensor, True at real keys; "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        allowed = None  # (B or 1, 1, Q, K) bool: True where query may attend key
        if mask is not None:
            allowed = mask[:, None, None, :]
        if causal:
            lower = torch.ones(Q, K, dtype=torch.bool, device=q.device).tril()
            allowed = lower if allowed is None else allowed & lower
        dropout = self.dropout if self.training else 0.0

        weights: Tensor | None = None
        if self.fused and not need_weights:
            context = self._fused(q, k, v, allowed, causal and mask is None, dropout)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)  # (B, H, Q, K)
            weights = masked_softmax(scores, allowed)
            context = F.dropout(weights, dropout) @ v if dropout > 0 else weights @ v
        context = context.transpose(1, 2).reshape(B, Q, self.embed_size)  # (B, Q, E)
        return self.out_proj(context), weights

    @staticmethod
    def _fused(
        q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None, is_causal: bool, dropout: float
    ) -> Tensor:
        """softmax(q k^T / sqrt(d)) v by ``F.scaled_dot_product_attention`` -> (B, H, Q, d);
        a query row with no allowed key attends all keys there and is zeroed here."""
        if is_causal:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        if allowed is None:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        any_key = allowed.any(dim=-1, keepdim=True)  # (B, 1, Q, 1)
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed | ~any_key, dropout_p=dropout
        )
        return context * any_key.to(context.dtype)

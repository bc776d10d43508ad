"""Transformer encoder and decoder layers and stacks (Vaswani et al., 2017), from the
equations, with ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer``'s
parameter names (their ``state_dict``s load into ours and back).

Shapes: B batch, T target/input time, S source (memory) time, E = d_model, F feed-forward.

.. code-block:: text

    FFN(x)     = linear2(dropout(act(linear1(x))))                     act: relu | gelu
    post-norm (the paper):             x = norm1(x + dropout1(SelfAttn(x)))
                                       x = norm2(x + dropout2(FFN(x)))
    pre-norm (norm_first, GPT-2):      x = x + dropout1(SelfAttn(norm1(x)))
                                       x = x + dropout2(FFN(norm2(x)))
    decoder: self-attention (causal), then cross-attention to the memory
             (CrossAttn(x, memory) with norm2/dropout2), then the FFN (norm3/dropout3).

    PE(pos, 2i) = sin(pos / 10000^(2i/E)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/E))

Masks follow ``seqlab.nn.attention``: bool, True at real positions. A pre-norm stack ends
with a final LayerNorm (``norm``), as GPT-2 and ``nn.TransformerEncoder(norm=...)`` do.

Step-by-step decoding: a layer's ``cache`` holds the projected keys and values of every
position its self-attention has seen so far ((B, H, t, d) each); a step projects only the
new position and attends from it to the cache plus itself, which is exactly the causal pass
restricted to the last row. A decoder's cross-attention reads the memory's keys and values
projected once per source (:meth:`TransformerDecoder.project_memory`), not at every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.nn.attention import KeyValues, MultiHeadAttention

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def causal_mask(size: int, device: torch.device | None = None) -> Tensor:
    """(size, size) bool, True where query i may attend key j (j <= i)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def sinusoidal_positions(length: int, size: int) -> Tensor:
    """The paper's fixed position codes PE (length, size) for positions 0..length-1."""
    if size % 2:
        raise ValueError(f"sinusoidal positions need an even size, got {size}")
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    inverse = torch.exp(torch.arange(0, size, 2, dtype=torch.float32) * (-math.log(10000.0) / size))
    codes = torch.zeros(length, size)
    codes[:, 0::2] = torch.sin(position * inverse)
    codes[:, 1::2] = torch.cos(position * inverse)
    return codes


class SinusoidalPositions(nn.Module):
    """Fixed codes: forward(length, offset=0) -> (length, E) for positions offset.. ."""

    def __init__(self, max_length: int, size: int) -> None:
        super().__init__()
        self.max_length = max_length
        self.register_buffer("codes", sinusoidal_positions(max_length, size), persistent=False)

    def forward(self, length: int, offset: int = 0) -> Tensor:
        _check_length(length + offset, self.max_length)
        return self.get_buffer("codes")[offset : offset + length]


class LearnedPositions(nn.Module):
    """A learned table (max_length, E): forward(length, offset=0) -> (length, E)."""

    def __init__(self, max_length: int, size: int) -> None:
        super().__init__()
        self.max_length = max_length
        self.weight = nn.Parameter(torch.empty(max_length, size))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, length: int, offset: int = 0) -> Tensor:
        _check_length(length + offset, self.max_length)
        return self.weight[offset : offset + length]


def _check_length(length: int, max_length: int) -> None:
    if length > max_length:
        raise ValueError(f"sequence of {length} positions is longer than max_length={max_length}")


POSITIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "sinusoidal": SinusoidalPositions,
    "learned": LearnedPositions,
}


def check_transformer_config(
    d_model: int, num_heads: int, positions: str, dropout: float, label_smoothing: float
) -> None:
    """What every Transformer model config must satisfy (``model.*`` names in the errors):
    heads that divide the width, an even width for sinusoidal codes, rates in [0, 1)."""
    if d_model % num_heads:
        raise ConfigError(
            f"model.d_model ({d_model}) must be divisible by model.num_heads ({num_heads})"
        )
    if positions == "sinusoidal" and d_model % 2:
        raise ConfigError("model.positions: sinusoidal needs an even model.d_model")
    if not 0.0 <= dropout < 1.0 or not 0.0 <= label_smoothing < 1.0:
        raise ConfigError("model.dropout and model.label_smoothing must be in [0, 1)")


class _Sublayers(nn.Module):
    """What encoder and decoder layers share: the feed-forward block and the residual /
    norm wiring."""

    norm_first: bool
    linear1: nn.Linear
    linear2: nn.Linear
    dropout: nn.Dropout

    def _init_ffn(
        self, d_model: int, dim_feedforward: int, dropout: float, activation: str, bias: bool
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]

    def _ffn(self, x: Tensor) -> Tensor:
        """(B, T, E) -> (B, T, E)."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    @staticmethod
    def _self_attention(
        attention: MultiHeadAttention,
        x: Tensor,
        mask: Tensor | None,
        causal: bool,
        cache: KeyValues | None,
    ) -> tuple[Tensor, KeyValues]:
        """Self-attention of x (B, T, E) -> (output (B, T, E), the new cache: projected keys
        and values (B, H, t + T, d)).

        With a cache (those of the t earlier positions), T must be 1: the new position
        attends every earlier one and itself.
        """
        out, _, cache = attention.forward_cached(x, cache, mask, causal)
        return out, cache


class TransformerEncoderLayer(_Sublayers):
    """Self-attention + feed-forward, each with a residual and a LayerNorm (post- or pre-).

    forward(x (B, T, E), mask (B, T) bool | None, causal=False) -> (B, T, E).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout, bias=bias, fused=fused)
        self._init_ffn(d_model, dim_feedforward, dropout, activation, bias)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        return self.forward_cached(x, mask, causal)[0]

    def forward_cached(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        causal: bool = False,
        cache: KeyValues | None = None,
    ) -> tuple[Tensor, KeyValues]:
        """forward, also returning the self-attention cache for step-by-step decoding."""
        if self.norm_first:
            attended, cache = self._self_attention(
                self.self_attn, self.norm1(x), mask, causal, cache
            )
            x = x + self.dropout1(attended)
            x = x + self.dropout2(self._ffn(self.norm2(x)))
        else:
            attended, cache = self._self_attention(self.self_attn, x, mask, causal, cache)
            x = self.norm1(x + self.dropout1(attended))
            x = self.norm2(x + self.dropout2(self._ffn(x)))
        return x, cache


class TransformerDecoderLayer(_Sublayers):
    """Causal self-attention, cross-attention to the memory, feed-forward; each with a
    residual and a LayerNorm (post- or pre-).

    forward(x (B, T, E), memory (B, S, E), mask (B, T) | None, memory_mask (B, S) | None,
    causal=True) -> (B, T, E).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout, bias=bias, fused=fused)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout, bias=bias, fused=fused)
        self._init_ffn(d_model, dim_feedforward, dropout, activation, bias)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        causal: bool = True,
    ) -> Tensor:
        return self.forward_cached(x, memory, mask, memory_mask, causal)[0]

    def forward_cached(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        causal: bool = True,
        cache: KeyValues | None = None,
    ) -> tuple[Tensor, KeyValues]:
        """forward, also returning the self-attention cache for step-by-step decoding."""
        x, cache, _ = self.forward_weights(x, memory, mask, memory_mask, causal, cache)
        return x, cache

    def forward_weights(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        causal: bool = True,
        cache: KeyValues | None = None,
        need_weights: bool = False,
        projected: KeyValues | None = None,
    ) -> tuple[Tensor, KeyValues, Tensor | None]:
        """forward_cached, also returning the cross-attention weights (B, H, T, S) when
        ``need_weights`` (computed by the explicit path; None otherwise). ``projected``: the
        memory's keys and values from :meth:`project_memory` (else projected here)."""
        if self.norm_first:
            attended, cache = self._self_attention(
                self.self_attn, self.norm1(x), mask, causal, cache
            )
            x = x + self.dropout1(attended)
            crossed, weights = self._cross(
                self.norm2(x), memory, memory_mask, need_weights, projected
            )
            x = x + self.dropout2(crossed)
            x = x + self.dropout3(self._ffn(self.norm3(x)))
        else:
            attended, cache = self._self_attention(self.self_attn, x, mask, causal, cache)
            x = self.norm1(x + self.dropout1(attended))
            crossed, weights = self._cross(x, memory, memory_mask, need_weights, projected)
            x = self.norm2(x + self.dropout2(crossed))
            x = self.norm3(x + self.dropout3(self._ffn(x)))
        return x, cache, weights

    def project_memory(self, memory: Tensor) -> KeyValues:
        """The cross-attention's keys and values of ``memory`` (B, S, E), (B, H, S, d) each."""
        return self.multihead_attn.project_memory(memory, memory)

    def _cross(
        self,
        x: Tensor,
        memory: Tensor,
        memory_mask: Tensor | None,
        need_weights: bool,
        projected: KeyValues | None,
    ) -> tuple[Tensor, Tensor | None]:
        if projected is not None:
            return self.multihead_attn.forward_memory(x, projected, memory_mask, need_weights)
        return self.multihead_attn(x, memory, memory, memory_mask, need_weights=need_weights)


class _Stack(nn.Module):
    """``num_layers`` layers of ``layer_type``, built with the same arguments; a pre-norm
    stack ends with a LayerNorm (``norm``)."""

    layer_type: ClassVar[Callable[..., nn.Module]]

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, norm_first)
        self.layers = nn.ModuleList(self.layer_type(*args, bias, fused) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias) if norm_first else None


class TransformerEncoder(_Stack):
    """``num_layers`` encoder layers; a pre-norm stack ends with a LayerNorm.

    forward(x (B, T, E), mask (B, T) | None, causal=False) -> (B, T, E). With
    ``causal=True`` this is a decoder-only (GPT) stack.
    """

    layer_type = TransformerEncoderLayer

    def forward(self, x: Tensor, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        return self.forward_cached(x, mask, causal)[0]

    def forward_cached(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        causal: bool = False,
        caches: list[KeyValues] | None = None,
    ) -> tuple[Tensor, list[KeyValues]]:
        """forward with one self-attention cache per layer (None: start fresh)."""
        new_caches = []
        layers = cast(list[TransformerEncoderLayer], list(self.layers))
        for index, layer in enumerate(layers):
            x, cache = layer.forward_cached(
                x, mask, causal, None if caches is None else caches[index]
            )
            new_caches.append(cache)
        if self.norm is not None:
            x = self.norm(x)
        return x, new_caches


class TransformerDecoder(_Stack):
    """``num_layers`` decoder layers; a pre-norm stack ends with a LayerNorm.

    forward(x (B, T, E), memory (B, S, E), mask (B, T) | None, memory_mask (B, S) | None)
    -> (B, T, E), causal over x.
    """

    layer_type = TransformerDecoderLayer

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
    ) -> Tensor:
        return self.forward_cached(x, memory, mask, memory_mask)[0]

    def forward_cached(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        caches: list[KeyValues] | None = None,
    ) -> tuple[Tensor, list[KeyValues]]:
        """forward with one self-attention cache per layer (None: start fresh); a cached
        call takes one new position (B, 1, E) and ``mask`` then covers every position seen."""
        x, new_caches, _ = self.forward_weights(x, memory, mask, memory_mask, caches)
        return x, new_caches

    def project_memory(self, memory: Tensor) -> list[KeyValues]:
        """Every layer's cross-attention keys and values of ``memory`` (B, S, E), computed
        once per source for step-by-step decoding."""
        layers = cast(list[TransformerDecoderLayer], list(self.layers))
        return [layer.project_memory(memory) for layer in layers]

    def forward_weights(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        caches: list[KeyValues] | None = None,
        need_weights: bool = False,
        projected: list[KeyValues] | None = None,
    ) -> tuple[Tensor, list[KeyValues], Tensor | None]:
        """forward_cached, also returning the last layer's cross-attention weights
        (B, H, T, S) when ``need_weights`` (None otherwise). ``projected``: every layer's
        memory keys and values from :meth:`project_memory` (else projected here)."""
        new_caches = []
        weights: Tensor | None = None
        layers = cast(list[TransformerDecoderLayer], list(self.layers))
        for index, layer in enumerate(layers):
            cache = None if caches is None else caches[index]
            last = need_weights and index == len(layers) - 1
            x, cache, weights = layer.forward_weights(
                x,
                memory,
                mask,
                memory_mask,
                True,
                cache,
                last,
                None if projected is None else projected[index],
            )
            new_caches.append(cache)
        if self.norm is not None:
            x = self.norm(x)
        return x, new_caches, weights

"""Decoder-only Transformer language model (GPT-style, as nanoGPT's character model).

    h_0    = dropout(E[w_t] + P[t])                     token + position, (B, T, E)
    h_l    = Block_l(h_{l-1})                           causal self-attention + FFN, l = 1..L
    logits = W norm(h_L)                                (B, T, V); W = E when tied
    loss   = -1/(B T) sum_t log softmax(logits_t)[w_{t+1}]   (label smoothing optional)

Blocks are ``seqlab.nn.transformer.TransformerEncoderLayer`` with a causal mask (pre-norm
by default, with the stack's final LayerNorm). The model sees at most ``block_size``
positions: each training / evaluation window is its whole context (no state is carried
between windows, so ``forward`` returns ``None`` as its state). Generation keeps one
self-attention cache per layer; once the text is longer than ``block_size`` it restarts
from the last ``block_size`` tokens (nanoGPT crops the context the same way).

Shapes: B batch, T time, E = d_model, V vocabulary, L layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.errors import ConfigError
from seqlab.models.rnn_lm import LMBatch
from seqlab.nn.attention import KeyValues, select_key_values
from seqlab.nn.transformer import POSITIONS, TransformerEncoder, check_transformer_config


@dataclass(frozen=True)
class TransformerLMConfig:
    name: str = "transformer"
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    dim_feedforward: int = 512
    dropout: float = 0.1
    """Dropout on embeddings, attention weights, residual branches and the FFN."""
    block_size: int = 128
    """The most positions the model attends over (``data.bptt`` must not exceed it)."""
    positions: Literal["learned", "sinusoidal"] = "learned"
    norm_first: bool = True
    activation: Literal["relu", "gelu"] = "gelu"
    tie_weights: bool = True
    label_smoothing: float = 0.0
    """Training loss only; evaluation reports the plain cross-entropy."""
    fused: bool = True
    """Attention by ``F.scaled_dot_product_attention`` (False: the explicit equations)."""

    def validate(self) -> None:
        check_transformer_config(
            self.d_model, self.num_heads, self.positions, self.dropout, self.label_smoothing
        )
        if self.num_layers < 1 or self.block_size < 1:
            raise ConfigError("model.num_layers and model.block_size must be at least 1")


class DecodeState(NamedTuple):
    tokens: Tensor
    """(B, t) every token in the current context."""
    caches: list[KeyValues]
    """One self-attention cache per layer: the keys and values of the t positions seen,
    (B, H, t, d) each."""


class TransformerLM(nn.Module):
    def __init__(self, vocab_size: int, cfg: TransformerLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(vocab_size, cfg.d_model)
        self.positions = POSITIONS[cfg.positions](cfg.block_size, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.transformer = TransformerEncoder(
            cfg.num_layers,
            cfg.d_model,
            cfg.num_heads,
            cfg.dim_feedforward,
            cfg.dropout,
            cfg.activation,
            norm_first=cfg.norm_first,
            fused=cfg.fused,
        )
        self.decoder = nn.Linear(cfg.d_model, vocab_size, bias=False)
        self.reset_parameters()
        if cfg.tie_weights:
            self.decoder.weight = self.embedding.weight

    def reset_parameters(self) -> None:
        """GPT-2's initialisation (as nanoGPT): N(0, 0.02) weights, zero biases, and the
        projections into the residual stream scaled by 1/sqrt(2 L)."""
        for name, param in self.named_parameters():
            if param.dim() >= 2:
                scaled = name.endswith(("out_proj.weight", "linear2.weight"))
                nn.init.normal_(
                    param, std=0.02 / math.sqrt(2 * self.cfg.num_layers) if scaled else 0.02
                )
            elif name.endswith("bias"):
                nn.init.zeros_(param)

    def _embed(self, inputs: Tensor, offset: int = 0) -> Tensor:
        """(B, T) ids -> (B, T, E): token + position codes, dropout."""
        if inputs.size(1) + offset > self.cfg.block_size:
            raise ConfigError(
                f"a window of {inputs.size(1) + offset} tokens is longer than "
                f"model.block_size={self.cfg.block_size} (set data.bptt <= model.block_size)"
            )
        return self.dropout(self.embedding(inputs) + self.positions(inputs.size(1), offset))

    def forward(self, inputs: Tensor, state: Any = None) -> tuple[Tensor, None]:
        """(B, T) ids -> logits (B, T, V) and ``None`` (no state between windows)."""
        hidden = self.transformer(self._embed(inputs), causal=True)  # (B, T, E)
        return self.decoder(hidden), None

    def loss(self, batch: LMBatch) -> LossOutput:
        """Mean cross-entropy (nats/token) over the window, label-smoothed if configured."""
        logits, _ = self(batch.inputs)
        loss = F.cross_entropy(
            logits.flatten(0, 1), batch.targets.flatten(), label_smoothing=self.cfg.label_smoothing
        )
        return LossOutput(loss, int(batch.targets.numel()))

    def predict(self, batch: LMBatch) -> Tensor:
        return self(batch.inputs)[0].argmax(-1)

    # --------------------------------------------------------------- decoding protocol

    def start(self, prompt: Tensor) -> tuple[Tensor, DecodeState]:
        """(B, T) prompt (cropped to its last ``block_size`` tokens) -> last logits (B, V)."""
        tokens = prompt[:, -self.cfg.block_size :]
        hidden, caches = self.transformer.forward_cached(self._embed(tokens), causal=True)
        return self.decoder(hidden[:, -1]), DecodeState(tokens, caches)

    def step(self, tokens: Tensor, state: DecodeState) -> tuple[Tensor, DecodeState]:
        """(B,) next tokens -> logits (B, V) for the token after them."""
        context = torch.cat([state.tokens, tokens.unsqueeze(1)], dim=1)  # (B, t + 1)
        if context.size(1) > self.cfg.block_size:  # the window is full: restart cropped
            return self.start(context[:, 1:])
        offset = state.tokens.size(1)
        hidden, caches = self.transformer.forward_cached(
            self._embed(tokens.unsqueeze(1), offset), caches=state.caches
        )
        return self.decoder(hidden[:, -1]), DecodeState(context, caches)

    def select_state(self, state: DecodeState, index: Tensor) -> DecodeState:
        return DecodeState(
            state.tokens.index_select(0, index),
            select_key_values(state.caches, index),
        )

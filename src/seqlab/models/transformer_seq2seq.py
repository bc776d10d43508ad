r"""Transformer encoder-decoder for translation (Vaswani et al., 2017), built from
:mod:`seqlab.nn.transformer`'s layers, with the same batches, loss and decoding API as
the recurrent :class:`~seqlab.models.seq2seq.Seq2Seq`, so the ``translate`` task puts the
two side by side on the same data.

.. code-block:: text

    x_0 = dropout(sqrt(E) E_src[x] + P[0..S-1])             source, (B, S, E)
    memory = Encoder(x_0, mask)                              L_enc self-attention layers
    y_0 = dropout(sqrt(E) E_tgt[y_in] + P[0..T-1])           target inputs (BOS y_1 ..)
    h = Decoder(y_0, memory, memory_mask)                    L_dec layers: causal
                                                             self-attention, cross-attention
                                                             to the memory, feed-forward
    logits = W h                                             (B, T, V); W = E_tgt when tied
    loss = (1 - eps) NLL + eps mean_k(-log p_k)              label smoothing eps (training)

Step-by-step decoding (:mod:`seqlab.decode`'s greedy / beam search) keeps one
self-attention cache per decoder layer (the projected keys and values of the earlier
positions) and every layer's cross-attention keys and values of the source, projected at
the first step; a step is the causal pass restricted to its last position. The attention
weights a step returns are the last decoder layer's cross-attention, averaged over heads.

Shapes: B batch, S source positions, T target steps, E = d_model, V target vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from seqlab.contract import LossOutput
from seqlab.data.batching import Padded
from seqlab.errors import ConfigError
from seqlab.models.seq2seq import Seq2SeqBatch, target_loss, target_nll
from seqlab.nn.attention import KeyValues, select_key_values
from seqlab.nn.transformer import (
    POSITIONS,
    TransformerDecoder,
    TransformerEncoder,
    check_transformer_config,
)


@dataclass(frozen=True)
class TransformerSeq2SeqConfig:
    name: str = "transformer"
    d_model: int = 256
    num_heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    dim_feedforward: int = 1024
    dropout: float = 0.1
    """Dropout on embeddings, attention weights, residual branches and the FFN."""
    activation: Literal["relu", "gelu"] = "relu"
    norm_first: bool = True
    """Pre-norm layers (and a final LayerNorm per stack); False: the paper's post-norm."""
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_positions: int = 512
    """The longest source or target (in tokens) the position codes cover."""
    tie_embeddings: bool = True
    """The output layer is the target embedding matrix (Press & Wolf 2017)."""
    label_smoothing: float = 0.1
    """Training loss only; evaluation reports the plain cross-entropy."""
    fused: bool = True
    """Attention by ``F.scaled_dot_product_attention`` (False: the explicit equations)."""

    def validate(self) -> None:
        check_transformer_config(
            self.d_model, self.num_heads, self.positions, self.dropout, self.label_smoothing
        )
        if min(self.encoder_layers, self.decoder_layers, self.max_positions) < 1:
            raise ConfigError(
                "model.encoder_layers, model.decoder_layers, model.max_positions must be >= 1"
            )


class TransformerState(NamedTuple):
    """What one decoding step hands to the next."""

    caches: list[KeyValues] | None
    """One self-attention cache per decoder layer (the keys and values of the t positions
    seen, (B, H, t, d) each); None before the first step."""
    position: int
    """t: the position of the next input token (the same for every row)."""
    memory: list[KeyValues] | None = None
    """Every decoder layer's cross-attention keys and values of the source, projected once
    at the first step ((B, H, S, d) each): the same on every row of a source."""


class TransformerSeq2Seq(nn.Module):
    """``TransformerSeq2Seq(cfg, source_vocab, target_vocab, pad_index)``."""

    def __init__(
        self,
        cfg: TransformerSeq2SeqConfig,
        source_vocab: int,
        target_vocab: int,
        pad_index: int,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.pad_index = pad_index
        self.scale = math.sqrt(cfg.d_model)
        self.source_embedding = nn.Embedding(source_vocab, cfg.d_model, padding_idx=pad_index)
        self.target_embedding = nn.Embedding(target_vocab, cfg.d_model, padding_idx=pad_index)
        self.positions = POSITIONS[cfg.positions](cfg.max_positions, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        layer_args = (cfg.d_model, cfg.num_heads, cfg.dim_feedforward, cfg.dropout, cfg.activation)
        self.encoder = TransformerEncoder(
            cfg.encoder_layers, *layer_args, norm_first=cfg.norm_first, fused=cfg.fused
        )
        self.decoder = TransformerDecoder(
            cfg.decoder_layers, *layer_args, norm_first=cfg.norm_first, fused=cfg.fused
        )
        self.output = nn.Linear(cfg.d_model, target_vocab, bias=False)
        self.reset_parameters()
        if cfg.tie_embeddings:
            self.output.weight = self.target_embedding.weight

    def reset_parameters(self) -> None:
        """Xavier-uniform weight matrices (as the paper's reference code and
        ``nn.Transformer``); embeddings N(0, E^-1/2), so that sqrt(E)-scaled rows have unit
        variance per coordinate, the padding row zero."""
        for name, param in self.named_parameters():
            if name.startswith("positions."):
                continue  # a learned table keeps its own N(0, 0.02) start
            if "embedding" in name:
                nn.init.normal_(param, std=self.cfg.d_model**-0.5)
            elif param.dim() >= 2:
                nn.init.xavier_uniform_(param)
        with torch.no_grad():
            self.source_embedding.weight[self.pad_index].zero_()
            self.target_embedding.weight[self.pad_index].zero_()

    def _embed(self, embedding: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        """(B, T) ids -> (B, T, E): scaled token embedding + position codes, dropout."""
        positions = self.positions(ids.size(1), offset)  # (T, E)
        return self.dropout(embedding(ids) * self.scale + positions)

    # ----------------------------------------------------------------------- encoder

    def encode(self, source: Padded) -> tuple[Tensor, Tensor, TransformerState]:
        """Source ids (B, S) -> memory (B, S, E), mask (B, S), the decoder's first state."""
        memory = self.encoder(self._embed(self.source_embedding, source.ids), source.mask)
        return memory, source.mask, TransformerState(None, 0)

    # ----------------------------------------------------------------------- contract

    def forward(self, batch: Seq2SeqBatch) -> tuple[Tensor, None]:
        """Teacher forcing: logits (B, T, V) (no attention weights: the fused path)."""
        memory, mask, _ = self.encode(batch.source)
        # causal self-attention: a real target position never sees the padding after it
        hidden = self.decoder(
            self._embed(self.target_embedding, batch.target_in), memory, None, mask
        )
        return self.output(hidden), None

    def loss(self, batch: Seq2SeqBatch) -> LossOutput:
        """Mean cross-entropy (nats) per target token, padding excluded; label-smoothed in
        training."""
        smoothing = self.cfg.label_smoothing if self.training else 0.0
        return target_loss(self(batch)[0], batch, self.pad_index, smoothing)

    def token_nll(self, batch: Seq2SeqBatch) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of the real target tokens and their count."""
        return target_nll(self(batch)[0], batch, self.pad_index)

    def predict(self, batch: Seq2SeqBatch) -> Tensor:
        """Teacher-forced argmax (B, T) (decoding proper is in seqlab.decode)."""
        return self(batch)[0].argmax(-1)

    # ----------------------------------------------------------------------- decoding

    def step(
        self, tokens: Tensor, state: TransformerState, memory: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, TransformerState, Tensor | None]:
        """``tokens`` (B,) ids of y_{t-1} -> logits (B, V), the new state, the last layer's
        cross-attention weights averaged over heads (B, S)."""
        if memory is None:
            raise ValueError("the Transformer decoder needs the encoder memory")
        embedded = self._embed(self.target_embedding, tokens.unsqueeze(1), state.position)
        projected = state.memory
        if projected is None:
            projected = self.decoder.project_memory(memory)
        hidden, caches, weights = self.decoder.forward_weights(
            embedded, memory, None, mask, state.caches, need_weights=True, projected=projected
        )
        assert weights is not None  # (B, H, 1, S)
        logits = self.output(hidden[:, 0])
        following = TransformerState(caches, state.position + 1, projected)
        return logits, following, weights.mean(1)[:, 0]

    def select_state(self, state: TransformerState, index: Tensor) -> TransformerState:
        return TransformerState(
            _select(state.caches, index), state.position, _select(state.memory, index)
        )

    def reorder_hypotheses(self, state: TransformerState, index: Tensor) -> TransformerState:
        """:meth:`select_state` for an index that moves rows only within their source
        (beam search's parents): the projected memory stays as it is."""
        return TransformerState(_select(state.caches, index), state.position, state.memory)


def _select(pairs: list[KeyValues] | None, index: Tensor) -> list[KeyValues] | None:
    """Keep / reorder the batch rows of every (keys, values) pair by ``index`` (K,)."""
    return None if pairs is None else select_key_values(pairs, index)

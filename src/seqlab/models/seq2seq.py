r"""Recurrent encoder-decoder for translation (Sutskever et al. 2014), with optional
attention (Bahdanau et al. 2015; Luong et al. 2015).

.. code-block:: text

    x' = reverse(x) within its length          optional (Sutskever et al.)      (B, S)
    memory, h_n = Recurrent(dropout(E_src[x']))  stacked, optionally bidirectional
                                                  memory (B, S, D·He), re-reversed
    s_0 = tanh(W_b [h_n^fwd; h_n^bwd] + b_b)    per decoder layer (the top encoder
                                                  layers); an LSTM's c_0 = W_c [c^fwd; c^bwd]
    logits_t, s_t, a_t = decoder.step(y_{t-1}, s_{t-1}, memory, mask)   nn/decoder.py
    loss = -1/N sum_{b,t: real} log softmax(logits_bt)[y_bt]   teacher forcing (label
           smoothing optional), N target tokens (EOS included, padding excluded)

The decoder's style is ``none`` (the memory is not read: the source is compressed into
``s_0``), ``bahdanau`` or ``luong``; the score of its attention is ``model.attention``
(``additive``, ``general``, ``dot``, ``scaled_dot``). ``sampling_prob`` > 0 trains with
scheduled sampling. The model is a :class:`~seqlab.contract.StepDecodable` once it has
encoded a batch: ``encode(source) -> (memory, mask, state)``, then ``step``.

Shapes: B batch, S source positions, T target steps, E embedding, He encoder hidden
(per direction), D directions, H decoder hidden, V target vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.data.batching import Padded
from seqlab.errors import ConfigError
from seqlab.nn.attention import Attention
from seqlab.nn.decoder import DecoderState, RecurrentDecoder
from seqlab.nn.recurrent import Recurrent, State


class Seq2SeqBatch(NamedTuple):
    source: Padded
    """ids (B, S), lengths (B,), mask (B, S)."""
    target_in: Tensor
    """(B, T): BOS y_1 ... y_{T-1} (padded)."""
    target_out: Tensor
    """(B, T): y_1 ... y_{T-1} EOS (padded with ``pad_index``)."""

    def to(self, device: torch.device | str) -> Seq2SeqBatch:
        return Seq2SeqBatch(
            self.source.to(device), self.target_in.to(device), self.target_out.to(device)
        )


@dataclass(frozen=True)
class Seq2SeqConfig:
    name: str = "seq2seq"
    cell: Literal["gru", "lstm", "rnn_tanh"] = "gru"
    embedding_size: int = 256
    encoder_hidden_size: int = 256
    """Per direction."""
    encoder_layers: int = 1
    bidirectional: bool = True
    reverse_source: bool = False
    hidden_size: int = 512
    """The decoder's hidden size."""
    decoder_layers: int = 1
    attention: Literal["none", "additive", "general", "dot", "scaled_dot"] = "additive"
    attention_style: Literal["bahdanau", "luong"] = "bahdanau"
    """``bahdanau``: attend with the previous decoder state, feed the context into the RNN;
    ``luong``: attend with the new state, combine into the attentional vector."""
    attention_size: int = 256
    """The additive score's hidden size."""
    input_feeding: bool = False
    """Luong style only: feed the previous attentional vector into the next step."""
    dropout: float = 0.3
    sampling_prob: float = 0.0
    """Scheduled sampling: probability of feeding the model's own token in training."""
    label_smoothing: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError("model.dropout and model.label_smoothing must be in [0, 1)")
        if not 0.0 <= self.sampling_prob <= 1.0:
            raise ConfigError("model.sampling_prob must be in [0, 1]")
        if min(self.encoder_layers, self.decoder_layers) < 1:
            raise ConfigError("model.encoder_layers and model.decoder_layers must be >= 1")
        if self.input_feeding and (self.attention == "none" or self.attention_style != "luong"):
            raise ConfigError("model.input_feeding needs attention with attention_style: luong")
        memory = self.encoder_hidden_size * (2 if self.bidirectional else 1)
        if self.attention in ("dot", "scaled_dot") and memory != self.hidden_size:
            raise ConfigError(
                f"model.attention: {self.attention} needs the encoder output size "
                f"({memory} = encoder_hidden_size x directions) to equal model.hidden_size "
                f"({self.hidden_size}); use general or additive"
            )


def target_loss(
    logits: Tensor, batch: Seq2SeqBatch, pad_index: int, label_smoothing: float = 0.0
) -> LossOutput:
    """Teacher-forced logits (B, T, V) -> mean cross-entropy (nats) per real target token
    of ``batch.target_out`` (padding excluded), with its token count; shared by every
    translate model."""
    loss = F.cross_entropy(
        logits.flatten(0, 1).float(),
        batch.target_out.flatten(),
        ignore_index=pad_index,
        label_smoothing=label_smoothing,
    )
    return LossOutput(loss, int((batch.target_out != pad_index).sum()))


def target_nll(logits: Tensor, batch: Seq2SeqBatch, pad_index: int) -> tuple[float, int]:
    """Teacher-forced logits (B, T, V) -> summed negative log-likelihood (nats) of the real
    target tokens and their count."""
    total = F.cross_entropy(
        logits.flatten(0, 1).float(),
        batch.target_out.flatten(),
        ignore_index=pad_index,
        reduction="sum",
    )
    return float(total), int((batch.target_out != pad_index).sum())


def reverse_padded(ids: Tensor, lengths: Tensor) -> Tensor:
    """Each row of ``ids`` (B, S, ...) reversed within its length; padding stays put."""
    steps = ids.size(1)
    positions = torch.arange(steps, device=ids.device).unsqueeze(0)  # (1, S)
    last = (lengths.to(ids.device) - 1).unsqueeze(1)  # (B, 1)
    index = torch.where(positions <= last, last - positions, positions)  # (B, S)
    if ids.dim() == 3:
        index = index.unsqueeze(-1).expand_as(ids)
    return ids.gather(1, index)


class Seq2Seq(nn.Module):
    def __init__(
        self,
        cfg: Seq2SeqConfig,
        source_vocab: int,
        target_vocab: int,
        pad_index: int,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.pad_index = pad_index
        directions = 2 if cfg.bidirectional else 1
        memory_size = directions * cfg.encoder_hidden_size
        self.source_embedding = nn.Embedding(
            source_vocab, cfg.embedding_size, padding_idx=pad_index
        )
        self.encoder = Recurrent(
            cfg.cell,
            cfg.embedding_size,
            cfg.encoder_hidden_size,
            cfg.encoder_layers,
            dropout=cfg.dropout,
            bidirectional=cfg.bidirectional,
        )
        self.bridge = nn.Linear(memory_size, cfg.hidden_size)
        self.bridge_cell = nn.Linear(memory_size, cfg.hidden_size) if cfg.cell == "lstm" else None
        attention = None
        if cfg.attention != "none":
            attention = Attention(cfg.attention, cfg.hidden_size, memory_size, cfg.attention_size)
        self.decoder = RecurrentDecoder(
            cfg.cell,
            target_vocab,
            cfg.embedding_size,
            cfg.hidden_size,
            cfg.decoder_layers,
            style="none" if attention is None else cfg.attention_style,
            attention=attention,
            memory_size=memory_size,
            input_feeding=cfg.input_feeding,
            dropout=cfg.dropout,
            padding_idx=pad_index,
        )
        self.dropout = nn.Dropout(cfg.dropout)

    # ----------------------------------------------------------------------- encoder

    def encode(self, source: Padded) -> tuple[Tensor, Tensor, DecoderState]:
        """Source ids (B, S) -> memory (B, S, D·He), mask (B, S), the decoder's first state."""
        ids, lengths = source.ids, source.lengths
        if self.cfg.reverse_source:
            ids = reverse_padded(ids, lengths)
        embedded = self.dropout(self.source_embedding(ids))  # (B, S, E)
        memory, final = self.encoder(embedded, lengths=lengths)  # (B, S, D·He)
        if self.cfg.reverse_source:
            memory = reverse_padded(memory, lengths)
        mask = source.mask
        hidden: State
        if isinstance(final, tuple):
            assert self.bridge_cell is not None
            hidden = (torch.tanh(self.bridge(self._layers(final[0]))),
                      self.bridge_cell(self._layers(final[1])))  # fmt: skip
        else:
            hidden = torch.tanh(self.bridge(self._layers(final)))  # (L_dec, B, H)
        if self.decoder.attention is None:
            return memory, mask, self.decoder.initial_state(hidden)
        return memory, mask, self.decoder.initial_state(hidden, memory)

    def _layers(self, final: Tensor) -> Tensor:
        """(L_enc·D, B, He) -> (L_dec, B, D·He): both directions of the top L_dec encoder
        layers (the top layer repeated when the decoder has more layers)."""
        directions = 2 if self.cfg.bidirectional else 1
        layers = final.view(self.cfg.encoder_layers, directions, final.size(1), final.size(2))
        joined = torch.cat(list(layers.unbind(1)), dim=-1)  # (L_enc, B, D·He)
        wanted = self.cfg.decoder_layers
        if wanted <= joined.size(0):
            return joined[-wanted:]
        extra = joined[-1:].expand(wanted - joined.size(0), -1, -1)
        return torch.cat([joined, extra], dim=0)

    # ----------------------------------------------------------------------- contract

    def forward(self, batch: Seq2SeqBatch) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: logits (B, T, V) and attention weights (B, T, S) | None."""
        memory, mask, state = self.encode(batch.source)
        sampling = self.cfg.sampling_prob if self.training else 0.0
        logits, _, weights = self.decoder(
            batch.target_in, state, memory, mask, sampling_prob=sampling
        )
        return logits, weights

    def loss(self, batch: Seq2SeqBatch) -> LossOutput:
        """Mean cross-entropy (nats) per target token, padding excluded."""
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
        self, tokens: Tensor, state: DecoderState, memory: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        return self.decoder.step(tokens, state, memory, mask)

    def select_state(self, state: DecoderState, index: Tensor) -> DecoderState:
        return self.decoder.select_state(state, index)

    def reorder_hypotheses(self, state: DecoderState, index: Tensor) -> DecoderState:
        return self.decoder.reorder_hypotheses(state, index)

r"""Listen, Attend and Spell (Chan et al., 2015): a pyramidal BiLSTM listener and an
attentive recurrent speller over its output.

.. code-block:: text

    h = Listen(x)                 pyramidal BiLSTM over log-mel frames   (B, T/2^L, 2H)
    s_i = LSTM([E y_{i-1}; o_{i-1}], s_{i-1})        the speller state  (B, D)
    c_i = attend(s_i, h)                              context            (B, 2H)
    o_i = tanh(W_c [c_i; s_i])                        fed to step i + 1  (B, D)
    P(y_i | x, y_<i) = softmax(W_s o_i + b)                              (B, V)
    loss = mean over target tokens (the digits and </s>) of -log P(y_i | x, y*_<i)

The speller is :class:`seqlab.nn.decoder.RecurrentDecoder` in style ``luong`` with input
feeding: LAS's s_i = RNN(s_{i-1}, y_{i-1}, c_{i-1}), c_i = AttentionContext(s_i, h) and
P(y_i) = CharacterDistribution(s_i, c_i), with c_{i-1} reaching step i through o_{i-1}.
The attention score is :mod:`seqlab.nn.attention`'s (LAS used an MLP-projected dot
product; ``additive`` is the default here). Decoding (greedy or beam) is
:mod:`seqlab.decode`'s batched search over :meth:`LAS.step`.

Characters: id 0 is padding, 1 is <s> (the speller's first input), 2 is </s>.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.data.batching import Padded
from seqlab.decode import Decoded, beam_search_batch, greedy_batch, max_lengths
from seqlab.errors import ConfigError
from seqlab.nn.attention import SCORES, Attention
from seqlab.nn.decoder import DecoderState, RecurrentDecoder
from seqlab.nn.listener import PyramidalLSTM

PAD, SOS, EOS = 0, 1, 2


class SpeechBatch(NamedTuple):
    features: Tensor  # (B, T, F) log-mel frames, zero after each length
    lengths: Tensor  # (B,) frames
    targets: Padded  # ids (B, S): the characters then </s>; padding 0

    def to(self, device: torch.device | str) -> SpeechBatch:
        return SpeechBatch(
            self.features.to(device), self.lengths.to(device), self.targets.to(device)
        )


@dataclass(frozen=True)
class LASConfig:
    name: str = "las"
    listener_hidden: int = 128
    listener_layers: int = 3
    """pBLSTM layers; each halves the frame rate (3: 8x)."""
    embedding_size: int = 32
    decoder_hidden: int = 128
    attention_size: int = 128
    dropout: float = 0.1
    attention: str = "additive"
    """The attention score (``seqlab.nn.attention.SCORES``): additive, general, dot, ..."""
    decoder_layers: int = 1
    beam_size: int = 1
    """1: greedy decoding; more: batched beam search of this width."""
    length_penalty: float = 0.0
    ctc_weight: float = 0.0
    """Joint CTC-attention training (Kim, Hori & Watanabe, 2017): loss = (1 - w) * attention
    loss + w * CTC loss of a linear layer over the listener's output (blank = id 0), which
    supervises the listener directly; decoding uses the speller only. (On FSDD, w = 0.3 did
    not shorten the speller's initial plateau in a 2-epoch trial; a curriculum did.)"""
    tokens_per_step: float = 1.0
    """Decoding stops after ``tokens_per_step * K + 2`` steps for a memory of K steps."""

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")
        if min(self.listener_layers, self.listener_hidden, self.decoder_hidden) < 1:
            raise ConfigError("model.listener_layers and the hidden sizes must be >= 1")
        if self.attention not in SCORES:
            raise ConfigError(
                f"model.attention must be one of {', '.join(SCORES)}, got {self.attention!r}"
            )
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ConfigError("model.ctc_weight must be in [0, 1]")
        if self.beam_size < 1:
            raise ConfigError("model.beam_size must be >= 1")


class LAS(nn.Module):
    """``LAS(cfg, num_features, num_tokens)``; ids 0/1/2 are <pad>/<s>/</s>."""

    def __init__(self, cfg: LASConfig, num_features: int, num_tokens: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.listener = PyramidalLSTM(
            num_features, cfg.listener_hidden, cfg.listener_layers, cfg.dropout
        )
        memory_size = self.listener.output_size
        self.speller = RecurrentDecoder(
            "lstm",
            num_tokens,
            cfg.embedding_size,
            cfg.decoder_hidden,
            cfg.decoder_layers,
            style="luong",
            attention=Attention(cfg.attention, cfg.decoder_hidden, memory_size, cfg.attention_size),
            memory_size=memory_size,
            input_feeding=True,
            dropout=cfg.dropout,
            padding_idx=PAD,
        )
        self.ctc = nn.Linear(memory_size, num_tokens) if cfg.ctc_weight > 0 else None

    def listen(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B, K, 2H) and its mask (B, K) bool."""
        memory, memory_lengths = self.listener(features, lengths)
        steps = torch.arange(memory.size(1), device=memory.device)
        return memory, steps[None, :] < memory_lengths[:, None]

    def initial_state(self, memory: Tensor) -> DecoderState:
        """The speller's state before <s>: zeros (LAS starts the speller from zero)."""
        zeros = memory.new_zeros(self.cfg.decoder_layers, memory.size(0), self.cfg.decoder_hidden)
        return self.speller.initial_state((zeros, zeros.clone()), memory)

    def step(
        self, tokens: Tensor, state: DecoderState, memory: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One speller step (``seqlab.decode``'s StepDecodable): (B,) ids -> logits (B, V),
        state, attention weights (B, K)."""
        return self.speller.step(tokens, state, memory, mask)

    def select_state(self, state: DecoderState, index: Tensor) -> DecoderState:
        return self.speller.select_state(state, index)

    def reorder_hypotheses(self, state: DecoderState, index: Tensor) -> DecoderState:
        return self.speller.reorder_hypotheses(state, index)

    def spell(self, batch: SpeechBatch, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, S, V) at each target position and the attention
        weights (B, S, K)."""
        ids = batch.targets.ids
        inputs = torch.cat([ids.new_full((ids.size(0), 1), SOS), ids[:, :-1]], dim=1)
        logits, _, weights = self.speller(inputs, self.initial_state(memory), memory, mask)
        assert weights is not None  # style luong always attends
        return logits, weights

    def forward(self, batch: SpeechBatch) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, S, V) and attention weights (B, S, K)."""
        memory, mask = self.listen(batch.features, batch.lengths)
        return self.spell(batch, memory, mask)

    def loss(self, batch: SpeechBatch) -> LossOutput:
        """Mean cross-entropy over the target characters and </s> (with ``ctc_weight``,
        mixed with the CTC loss per target character of the listener's output)."""
        memory, mask = self.listen(batch.features, batch.lengths)
        logits, _ = self.spell(batch, memory, mask)
        targets = batch.targets
        loss = F.cross_entropy(logits[targets.mask], targets.ids[targets.mask])
        if self.ctc is not None:
            log_probs = F.log_softmax(self.ctc(memory), dim=-1).transpose(0, 1)  # (K, B, V)
            labels = targets.lengths - 1  # the characters, </s> left out
            ctc = F.ctc_loss(
                log_probs.float(),
                targets.ids,
                mask.sum(dim=1),
                labels,
                blank=PAD,
                reduction="sum",
                zero_infinity=True,
            ) / labels.sum().clamp(min=1)
            weight = self.cfg.ctc_weight
            loss = (1.0 - weight) * loss + weight * ctc
        return LossOutput(loss, int(targets.mask.sum()))

    @torch.no_grad()
    def decode(self, batch: SpeechBatch) -> list[Decoded]:
        """The best output of each utterance (greedy, or beam search with
        ``cfg.beam_size`` > 1), with its attention weights per step."""
        memory, mask = self.listen(batch.features, batch.lengths)
        limits = max_lengths(mask.sum(dim=1), self.cfg.tokens_per_step, 2)
        state = self.initial_state(memory)
        if self.cfg.beam_size == 1:
            return greedy_batch(self, state, memory, mask, bos=SOS, eos=EOS, max_lengths=limits)
        beams = beam_search_batch(
            self,
            state,
            memory,
            mask,
            bos=SOS,
            eos=EOS,
            max_lengths=limits,
            beam_size=self.cfg.beam_size,
            length_penalty=self.cfg.length_penalty,
        )
        return [best[0] for best in beams]

    def predict(self, batch: SpeechBatch) -> list[list[int]]:
        """Output ids per utterance (</s> left out)."""
        return [list(decoded.tokens) for decoded in self.decode(batch)]

r"""Image captioning in the style of Show, Attend and Tell (Xu et al., 2015): annotation
vectors of an image and an attentive recurrent decoder that writes the caption.

.. code-block:: text

    a = Encoder(x)                    annotation vectors, one per location      (B, K, C)
        encoder ``cnn``: a small CNN over the image, trained jointly (nn/image_encoder.py)
        encoder ``features``: precomputed features from any encoder (``.npy``),
        (B, D), (B, K, D) or (B, H, W, D), projected: a = W_a f + b_a           (B, K, C)
    h_0 = tanh(W_h mean_k a_k), c_0 = tanh(W_c mean_k a_k)     initial LSTM state (B, H)
    z_t, alpha_t = attend(h_{t-1}, a)                  context and weights      (B, C), (B, K)
    h_t = LSTM([E y_{t-1}; z_t], h_{t-1})
    P(y_t) = softmax(W_s tanh(W_o [h_t; z_t; E y_{t-1}]))                        (B, V)

The decoder is :class:`seqlab.nn.decoder.RecurrentDecoder` in style ``bahdanau`` (attend
with the previous state, the context enters the LSTM, deep output), the attention score
one of :mod:`seqlab.nn.attention`'s. Decoding (greedy or beam) is :mod:`seqlab.decode`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.data.batching import Padded
from seqlab.decode import Decoded, beam_search_batch, greedy_batch, max_lengths
from seqlab.errors import ConfigError
from seqlab.nn.attention import SCORES, Attention
from seqlab.nn.decoder import DecoderState, RecurrentDecoder
from seqlab.nn.image_encoder import ConvEncoder


class CaptionBatch(NamedTuple):
    inputs: Tensor  # images (B, H, W) or features (B, K, D)
    targets: Padded  # ids (B, S): the caption's tokens then <eos>; padding 0

    def to(self, device: torch.device | str) -> CaptionBatch:
        return CaptionBatch(self.inputs.to(device), self.targets.to(device))


@dataclass(frozen=True)
class CaptionerConfig:
    name: str = "sat"
    encoder: Literal["cnn", "features"] = "cnn"
    """``cnn``: images in, a CNN trained with the decoder; ``features``: precomputed
    feature vectors or maps in (``.npy``)."""
    channels: int = 64
    """C: the CNN's channels, or the size precomputed features are projected to."""
    conv_layers: int = 3
    batch_norm: bool = True
    """Batch normalisation after each of the CNN's convolutions (without it the coordinate
    channels swamp the digits: docs/results/speech.md)."""
    embedding_size: int = 64
    hidden_size: int = 128
    attention: str = "additive"
    attention_size: int = 64
    dropout: float = 0.1
    beam_size: int = 1
    length_penalty: float = 0.0
    max_tokens: int = 20
    """Longest caption (tokens and <eos>) when decoding."""

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")
        if self.attention not in SCORES:
            raise ConfigError(
                f"model.attention must be one of {', '.join(SCORES)}, got {self.attention!r}"
            )
        if min(self.channels, self.conv_layers, self.hidden_size, self.beam_size) < 1:
            raise ConfigError("model sizes and model.beam_size must be >= 1")
        if self.max_tokens < 1:
            raise ConfigError("model.max_tokens must be >= 1")


class Captioner(nn.Module):
    """``Captioner(cfg, feature_size, vocab_size, bos, eos, pad)``; ``feature_size`` D is
    the size of precomputed features (ignored by the CNN encoder)."""

    def __init__(
        self, cfg: CaptionerConfig, feature_size: int, vocab_size: int, bos: int, eos: int, pad: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.bos, self.eos = bos, eos
        self.encoder: nn.Module = (
            ConvEncoder(cfg.channels, cfg.conv_layers, cfg.batch_norm)
            if cfg.encoder == "cnn"
            else nn.Linear(feature_size, cfg.channels)
        )
        self.init_h = nn.Linear(cfg.channels, cfg.hidden_size)
        self.init_c = nn.Linear(cfg.channels, cfg.hidden_size)
        self.decoder = RecurrentDecoder(
            "lstm",
            vocab_size,
            cfg.embedding_size,
            cfg.hidden_size,
            style="bahdanau",
            attention=Attention(cfg.attention, cfg.hidden_size, cfg.channels, cfg.attention_size),
            memory_size=cfg.channels,
            dropout=cfg.dropout,
            padding_idx=pad,
        )

    def annotations(self, inputs: Tensor) -> Tensor:
        """(B, K, C): the CNN's feature map read row by row, or the projected features
        ((B, D) is one location, (B, H, W, D) is H·W locations)."""
        if self.cfg.encoder == "cnn":
            if inputs.dim() != 3:
                raise ValueError(f"the cnn encoder expects images (B, H, W), got {inputs.shape}")
            return self.encoder(inputs)
        if inputs.dim() == 2:
            inputs = inputs.unsqueeze(1)
        elif inputs.dim() == 4:
            inputs = inputs.flatten(1, 2)
        return self.encoder(inputs)

    @torch.no_grad()
    def grid(self, inputs: Tensor) -> tuple[int, int]:
        """(rows, columns) of the annotation vectors of ``inputs`` (read row by row)."""
        if self.cfg.encoder == "cnn":
            rows, cols = self.encoder.feature_map(inputs).shape[-2:]  # type: ignore[operator]
            return int(rows), int(cols)
        if inputs.dim() == 4:
            return int(inputs.size(1)), int(inputs.size(2))
        return 1, int(inputs.size(1)) if inputs.dim() == 3 else 1

    def initial_state(self, memory: Tensor) -> DecoderState:
        mean = memory.mean(dim=1)  # (B, C)
        h = torch.tanh(self.init_h(mean)).unsqueeze(0)  # (1, B, H)
        c = torch.tanh(self.init_c(mean)).unsqueeze(0)
        return self.decoder.initial_state((h, c), memory)

    def step(
        self, tokens: Tensor, state: DecoderState, memory: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        return self.decoder.step(tokens, state, memory, mask)

    def select_state(self, state: DecoderState, index: Tensor) -> DecoderState:
        return self.decoder.select_state(state, index)

    def reorder_hypotheses(self, state: DecoderState, index: Tensor) -> DecoderState:
        return self.decoder.reorder_hypotheses(state, index)

    def forward(self, batch: CaptionBatch) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced logits (B, S, V) and attention weights (B, S, K)."""
        memory = self.annotations(batch.inputs)
        ids = batch.targets.ids
        inputs = torch.cat([ids.new_full((ids.size(0), 1), self.bos), ids[:, :-1]], dim=1)
        logits, _, weights = self.decoder(inputs, self.initial_state(memory), memory)
        return logits, weights

    def loss(self, batch: CaptionBatch) -> LossOutput:
        """Mean cross-entropy over the caption tokens and <eos>."""
        logits, _ = self(batch)
        mask = batch.targets.mask
        return LossOutput(F.cross_entropy(logits[mask], batch.targets.ids[mask]), int(mask.sum()))

    @torch.no_grad()
    def decode(self, inputs: Tensor) -> list[Decoded]:
        """The best caption of each input (greedy, or beam search with ``cfg.beam_size`` >
        1), with the attention weights of each step over the K locations."""
        memory = self.annotations(inputs)
        limits = max_lengths(
            torch.zeros(memory.size(0), dtype=torch.long, device=memory.device),
            0.0,
            self.cfg.max_tokens,
        )
        state = self.initial_state(memory)
        if self.cfg.beam_size == 1:
            return greedy_batch(
                self, state, memory, None, bos=self.bos, eos=self.eos, max_lengths=limits
            )
        beams = beam_search_batch(
            self,
            state,
            memory,
            None,
            bos=self.bos,
            eos=self.eos,
            max_lengths=limits,
            beam_size=self.cfg.beam_size,
            length_penalty=self.cfg.length_penalty,
        )
        return [best[0] for best in beams]

    def predict(self, batch: CaptionBatch) -> list[list[int]]:
        """Caption ids per input (<eos> left out)."""
        return [list(decoded.tokens) for decoded in self.decode(batch.inputs)]

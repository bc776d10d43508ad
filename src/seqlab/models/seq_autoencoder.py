"""Sequence autoencoder (Dai & Le, 2015): an LSTM reads a sentence, a second LSTM started
from the reader's final state writes it back, word by word.

.. code-block:: text

    encoder:  (h_T, c_T) = LSTM_enc(E[w_1 .. w_T])                    state (L, B, H)
    decoder:  s_0 = (h_T, c_T);  s_t = LSTM_dec(E[y_{t-1}], s_{t-1}),  y_0 = <bos>
              p(y_t | y_<t, w) = softmax(W s_t + b)                     (B, T+1, V)
    loss:     -1/N sum_t log p(y_t = w_t)  over the T words and the final <eos>

With ``feed_code`` the code z = h_T (the encoder's top layer) also enters every decoder
step, as in Cho et al. (2014)'s encoder-decoder: s_t = LSTM_dec([E[y_{t-1}]; z], s_{t-1}).
The code is still one fixed vector per sentence (no attention), but the decoder reads it
at each word instead of carrying it from s_0 alone.

Training feeds the gold previous word (teacher forcing); reconstruction (``predict``)
feeds the decoder's own greedy choice. Encoder and decoder share the embedding ``E``
(``tie_embeddings`` also ties the output layer ``W`` to it). The encoder's LSTM and the
embedding are what a classifier can start from (``RNNClassifierConfig.init_from``).
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
from seqlab.nn.recurrent import Recurrent, State


class SeqAEBatch(NamedTuple):
    """Sentences padded for the encoder and shifted for the decoder."""

    source: Padded  # ids (B, T), lengths (B,), mask (B, T): w_1 .. w_T
    decoder_input: Tensor  # (B, T+1): <bos> w_1 .. w_T (padded)
    target: Tensor  # (B, T+1): w_1 .. w_T <eos> (pad elsewhere)

    def to(self, device: torch.device | str) -> SeqAEBatch:
        return SeqAEBatch(
            self.source.to(device), self.decoder_input.to(device), self.target.to(device)
        )


@dataclass(frozen=True)
class SeqAutoencoderConfig:
    name: str = "lstm"
    embedding_size: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    cell: Literal["lstm", "gru"] = "lstm"
    dropout: float = 0.0
    """Dropout on the embeddings and on the decoder's output states."""
    tie_embeddings: bool = False
    """Use the embedding matrix as the output layer (needs embedding_size == hidden_size)."""
    reverse_source: bool = False
    """The encoder reads the sentence backwards, so the first words to write are the last
    it read (Sutskever et al., 2014): reconstruction is learnt much sooner. A classifier
    started from such an encoder takes it as its backward direction."""
    feed_code: bool = False
    """The encoder's final hidden state is also an input of every decoder step."""
    max_decode: int = 5
    """Greedy reconstruction stops at <eos> or after the source length + this many words."""

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")
        if self.tie_embeddings and self.embedding_size != self.hidden_size:
            raise ConfigError(
                "model.tie_embeddings needs model.embedding_size == model.hidden_size, got "
                f"{self.embedding_size} and {self.hidden_size}"
            )
        if self.max_decode < 0:
            raise ConfigError("model.max_decode must be >= 0")


class SeqAutoencoder(nn.Module):
    """Encoder LSTM -> state -> decoder LSTM over a vocabulary of ``vocab_size`` with
    special ids ``pad``, ``bos`` and ``eos``."""

    def __init__(
        self, cfg: SeqAutoencoderConfig, vocab_size: int, pad: int, bos: int, eos: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.pad, self.bos, self.eos = pad, bos, eos
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size, padding_idx=pad)
        self.encoder = Recurrent(cfg.cell, cfg.embedding_size, cfg.hidden_size, cfg.num_layers)
        decoder_input = cfg.embedding_size + (cfg.hidden_size if cfg.feed_code else 0)
        self.decoder = Recurrent(cfg.cell, decoder_input, cfg.hidden_size, cfg.num_layers)
        self.drop = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden_size, vocab_size)
        if cfg.tie_embeddings:
            self.output.weight = self.embedding.weight

    def encode(self, source: Padded) -> State:
        """The encoder's final state at each sentence's true length: (L, B, H) (LSTM: h, c);
        with ``reverse_source`` after reading w_T .. w_1."""
        ids = reverse_padded(source) if self.cfg.reverse_source else source.ids
        _, state = self.encoder(self.drop(self.embedding(ids)), lengths=source.lengths)
        return state

    def logits(self, batch: SeqAEBatch) -> Tensor:
        """Teacher-forced next-word logits (B, T+1, V)."""
        state = self.encode(batch.source)
        inputs = self._decoder_inputs(self.drop(self.embedding(batch.decoder_input)), state)
        steps, _ = self.decoder(inputs, state)
        logits: Tensor = self.output(self.drop(steps))
        return logits

    def _decoder_inputs(self, embedded: Tensor, code_state: State) -> Tensor:
        """Embedded inputs (B, T, E), with ``feed_code`` followed by the code (B, T, E+H)."""
        if not self.cfg.feed_code:
            return embedded
        h = code_state[0] if isinstance(code_state, tuple) else code_state  # (L, B, H)
        code = h[-1].unsqueeze(1).expand(-1, embedded.size(1), -1)
        return torch.cat([embedded, code], dim=-1)

    def loss(self, batch: SeqAEBatch) -> LossOutput:
        logits = self.logits(batch)
        n = int((batch.target != self.pad).sum())
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), batch.target.reshape(-1), ignore_index=self.pad
        )
        return LossOutput(loss, n)

    @torch.no_grad()
    def predict(self, batch: SeqAEBatch) -> list[list[int]]:
        """Greedy reconstruction of each sentence (without its <eos>): the decoder is fed
        its own previous choice, for at most the source length + ``max_decode`` words."""
        limit = int(batch.source.lengths.max()) + self.cfg.max_decode + 1
        return self.decode(self.encode(batch.source), limit)

    @torch.no_grad()
    def decode(
        self,
        state: State,
        limit: int,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """Sentences written from the decoder start states ``state`` ((L, B, H); LSTM: h,
        c), each stopped at <eos> (left out) or after ``limit`` words: the most likely word
        at each step (``temperature`` 0) or one drawn from softmax(logits / temperature)
        with ``generator``."""
        code = state
        h = state[0] if isinstance(state, tuple) else state
        size = h.size(1)
        token = torch.full((size,), self.bos, dtype=torch.long, device=h.device)
        done = torch.zeros(size, dtype=torch.bool, device=token.device)
        chosen = []
        for _ in range(limit):
            inputs = self._decoder_inputs(self.embedding(token)[:, None, :], code)
            out, state = self.decoder(inputs, state)  # (B, 1, H)
            logits = self.output(out[:, 0])  # (B, V)
            if temperature == 0:
                token = logits.argmax(-1)  # (B,)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator)[:, 0]
            chosen.append(torch.where(done, self.eos, token))
            done |= token == self.eos
            if bool(done.all()):
                break
        steps = torch.stack(chosen, 1).tolist()  # (B, <= limit)
        return [row[: row.index(self.eos)] if self.eos in row else row for row in steps]

    def code_size(self) -> int:
        """D, the size of a sentence's code: the decoder's start state flattened (LSTM: h
        and c of every layer, 2 L H; GRU: L H)."""
        per_layer = 2 if self.cfg.cell == "lstm" else 1
        return per_layer * self.cfg.num_layers * self.cfg.hidden_size

    def state_to_code(self, state: State) -> Tensor:
        """(L, B, H) state (LSTM: h, c) -> (B, D) codes: [h_1 .. h_L, c_1 .. c_L]."""
        parts = state if isinstance(state, tuple) else (state,)
        return torch.cat([layer for part in parts for layer in part], dim=-1)

    def code_to_state(self, code: Tensor) -> State:
        """(B, D) codes -> the decoder start state (L, B, H) (LSTM: h, c);
        the inverse of :meth:`state_to_code`."""
        layers = code.view(code.size(0), -1, self.cfg.hidden_size).transpose(0, 1)  # (P L, B, H)
        if self.cfg.cell != "lstm":
            return layers.contiguous()
        h, c = layers.chunk(2, dim=0)
        return h.contiguous(), c.contiguous()


def reverse_padded(source: Padded) -> Tensor:
    """Each sequence reversed within its length, padding left at the end: (B, T)."""
    steps = source.ids.size(1)
    position = torch.arange(steps, device=source.ids.device)[None, :]  # (1, T)
    mirrored = (source.lengths[:, None] - 1 - position).clamp(min=0)  # (B, T)
    index = torch.where(source.mask, mirrored, position)
    return source.ids.gather(1, index)

"""Recurrent language model (word or character level).

    e_t    = dropout(E[w_t])                         embedding, (B, T, E)
    h_t    = RNN(e_t, h_{t-1})                       stacked RNN/GRU/LSTM/peephole, (B, T, H)
    logits = W dropout(h_t) + b                      (B, T, V); W = E when weights are tied
    loss   = -1/(B T) sum_t log softmax(logits_t)[w_{t+1}]     teacher forcing, MLE

Truncated BPTT over a continuous stream: the hidden state at the end of one window is
carried into the next, detached so gradients stop at the window boundary; it is reset at
the start of every epoch (``LMBatch.reset``). Tying the input and output embeddings
(Press & Wolf 2017; Inan et al. 2017) needs ``embedding_size == hidden_size``.

Shapes: B batch, T time (BPTT window), E embedding, H hidden, V vocabulary, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.errors import ConfigError
from seqlab.nn.dropout import LockedDropout
from seqlab.nn.recurrent import Recurrent

State = Any  # Tensor (L, B, H) for RNN/GRU; tuple (h, c) of them for LSTMs


class LMBatch(NamedTuple):
    inputs: Tensor
    """(B, T) token ids."""
    targets: Tensor
    """(B, T) the next token of each input."""
    reset: bool
    """True for the first window of a stream: start from a zero state."""

    def to(self, device: torch.device | str) -> LMBatch:
        """The same batch on ``device``."""
        return LMBatch(self.inputs.to(device), self.targets.to(device), self.reset)

    def shard(self, rank: int, world: int) -> LMBatch:
        """Rows ``rank * B/world`` to ``(rank + 1) * B/world``: one process's streams in
        multi-process training (each carries its own rows' state from window to window)."""
        rows = self.inputs.shape[0] // world
        part = slice(rank * rows, (rank + 1) * rows)
        return LMBatch(self.inputs[part], self.targets[part], self.reset)


@dataclass(frozen=True)
class RNNLMConfig:
    name: str = "rnn"
    cell: Literal["lstm", "gru", "rnn_tanh", "rnn_relu", "peephole_lstm"] = "lstm"
    embedding_size: int = 200
    hidden_size: int = 200
    num_layers: int = 2
    dropout: float = 0.0
    """Dropout on the embeddings, between layers and before the decoder."""
    dropout_mode: Literal["standard", "locked"] = "standard"
    """``locked``: one mask per sequence, shared over time (Gal & Ghahramani; AWD-LSTM)."""
    tie_weights: bool = False
    init_range: float = 0.1
    """Uniform(-r, r) initialisation of every weight (Zaremba et al.: 0.1 small, 0.05 medium)."""
    force_explicit: bool = False
    """Run the explicit per-step loop even where the fused kernel could be used."""

    def validate(self) -> None:
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise ConfigError(
                "model.tie_weights needs model.embedding_size == model.hidden_size "
                f"(got {self.embedding_size} and {self.hidden_size})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")
        if self.num_layers < 1:
            raise ConfigError("model.num_layers must be at least 1")


class RNNLM(nn.Module):
    def __init__(self, vocab_size: int, cfg: RNNLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size)
        self.rnn = Recurrent(
            cfg.cell,
            cfg.embedding_size,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout,
            dropout_mode=cfg.dropout_mode,
            force_explicit=cfg.force_explicit,
        )
        self.dropout = (
            LockedDropout(cfg.dropout) if cfg.dropout_mode == "locked" else nn.Dropout(cfg.dropout)
        )
        self.decoder = nn.Linear(cfg.hidden_size, vocab_size)
        self.reset_parameters()
        if cfg.tie_weights:
            self.decoder.weight = self.embedding.weight
        self._carry: State | None = None

    def reset_parameters(self) -> None:
        r = self.cfg.init_range
        for param in self.parameters():
            nn.init.uniform_(param, -r, r)

    def forward(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """(B, T) ids -> logits (B, T, V) and the final state."""
        emb = self.dropout(self.embedding(inputs))  # (B, T, E)
        if state is not None:  # carried from a window run under autocast: bf16/fp16
            state = cast_state(state, emb.dtype)
        output, state = self.rnn(emb, state)  # (B, T, H)
        return self.decoder(self.dropout(output)), state

    def loss(self, batch: LMBatch) -> LossOutput:
        """Mean cross-entropy (nats/token) over the window; carries the state forward."""
        carry = None if batch.reset else self._carry
        logits, state = self(batch.inputs, carry)
        self._carry = detach(state)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())
        return LossOutput(loss, int(batch.targets.numel()))

    def predict(self, batch: LMBatch) -> Tensor:
        return self(batch.inputs)[0].argmax(-1)

    def get_extra_state(self) -> Any:
        """The state carried between BPTT windows, so a checkpoint taken mid-epoch resumes
        to exactly the numbers of an uninterrupted run."""
        return {"carry": self._carry}

    def set_extra_state(self, state: Any) -> None:
        self._carry = state["carry"] if isinstance(state, dict) else None

    # --------------------------------------------------------------- decoding protocol

    def start(self, prompt: Tensor) -> tuple[Tensor, State]:
        logits, state = self(prompt)
        return logits[:, -1], state

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        logits, state = self(tokens.unsqueeze(1), state)
        return logits[:, -1], state

    def select_state(self, state: State, index: Tensor) -> State:
        if isinstance(state, tuple):
            return tuple(s.index_select(1, index) for s in state)
        return state.index_select(1, index)


def cast_state(state: State, dtype: torch.dtype) -> State:
    if isinstance(state, tuple):
        return tuple(s.to(dtype) for s in state)
    return state.to(dtype)


def detach(state: State) -> State:
    """The state cut from the graph (``None``, the state of a stateless model, stays)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()

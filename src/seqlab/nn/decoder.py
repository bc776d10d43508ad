r"""A recurrent decoder, stacked, with optional attention over an encoder memory.

One step, from the previous target token ``y_{t-1}`` and the state ``s_{t-1}`` (top layer
shown; ``RNN`` is a stacked GRU/LSTM/Elman :class:`~seqlab.nn.recurrent.Recurrent`):

.. code-block:: text

    e_t = dropout(E[y_{t-1}])                                   (B, E)

    style "none" (Sutskever et al. 2014; the memory is not read):
        s_t = RNN(e_t, s_{t-1})                                 (B, H)
        o_t = s_t
    style "bahdanau" (Bahdanau et al. 2015: attend with the previous state):
        c_t, a_t = attend(s_{t-1}, memory, mask)                (B, M), (B, S)
        s_t = RNN([e_t; c_t], s_{t-1})
        o_t = tanh(W_o [s_t; c_t; e_t])                         (B, H) deep output
    style "luong" (Luong et al. 2015: attend with the new state):
        s_t = RNN([e_t; o_{t-1}], s_{t-1})   with input feeding (o_0 = 0)
        s_t = RNN(e_t, s_{t-1})              without
        c_t, a_t = attend(s_t, memory, mask)
        o_t = tanh(W_c [c_t; s_t])                              (B, H) attentional vector

    logits_t = W_s dropout(o_t) + b_s                           (B, V)

``attend`` is a :class:`seqlab.nn.attention.Attention` (or any module with its call):
``attention(query (B, Q, H), keys (B, S, M), values=None, mask=(B, S) bool,
projected_keys) -> (context (B, Q, M), weights (B, Q, S))``, ``mask`` True at real source
positions, so the weights are zero over padding. The decoder is given the module (built by
the model from its config), so any score (additive, general, dot, ...) works unchanged.
What the score can compute once per source (``project_keys``) is computed in
:meth:`RecurrentDecoder.initial_state` and carried in the state.

Two ways to run it, with the same parameters and the same numbers:

* :meth:`RecurrentDecoder.step`: one token per sequence, the API of
  :mod:`seqlab.decode` (greedy, sampling, beam search);
* :meth:`RecurrentDecoder.forward`: teacher forcing over a whole target prefix (B, T).
  Without input feeding and with attention after the step (``none``, ``luong``), the
  recurrent network runs once over all T steps (the fused kernel) and attention reads all
  T queries at once; otherwise it loops over :meth:`step`. ``sampling_prob`` > 0 is
  scheduled sampling (Bengio et al. 2015): at each step after the first, each sequence
  feeds a token drawn from its own previous prediction instead of the gold token, with
  that probability.

Shapes: B batch, T target steps, S source positions, E embedding, H hidden, M memory
(encoder output) size, V vocabulary, L layers.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol, cast

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.nn.recurrent import Recurrent, State

Style = Literal["none", "bahdanau", "luong"]
Cell = Literal["gru", "lstm", "rnn_tanh", "rnn_relu"]


class Attend(Protocol):
    """What the decoder uses of ``seqlab.nn.attention.Attention``."""

    def project_keys(self, keys: Tensor) -> Tensor | None: ...

    def __call__(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]: ...


class DecoderState(NamedTuple):
    """What one step hands to the next."""

    hidden: State
    """``h`` (L, B, H), or ``(h, c)`` for an LSTM."""
    feed: Tensor | None
    """``o_{t-1}`` (B, H) for input feeding; None without it."""
    keys: Tensor | None = None
    """What the attention score computes once per source (``project_keys``: ``U k`` of the
    additive score, ``W k`` of the general one), (B, S, ·); None if nothing."""


class RecurrentDecoder(nn.Module):
    """``RecurrentDecoder(cell, vocab_size, embedding_size, hidden_size, num_layers=1, *,
    style="none", attention=None, memory_size=0, input_feeding=False, dropout=0.0,
    padding_idx=None)``.

    ``attention`` (a module, see above) is required for styles ``bahdanau`` and ``luong``
    and must be None for ``none``; ``memory_size`` M is the size of the encoder outputs
    it reads. ``input_feeding`` needs style ``luong``. ``dropout`` applies to the
    embeddings, between layers and before the output layer.
    """

    def __init__(
        self,
        cell: Cell,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        style: Style = "none",
        attention: nn.Module | None = None,
        memory_size: int = 0,
        input_feeding: bool = False,
        dropout: float = 0.0,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__()
        if style not in ("none", "bahdanau", "luong"):
            raise ConfigError(f"decoder style must be none, bahdanau or luong, got {style!r}")
        if (attention is None) != (style == "none"):
            raise ConfigError(
                f"decoder style {style!r} "
                + ("reads no memory: give no attention" if style == "none" else "needs attention")
            )
        if attention is not None and memory_size <= 0:
            raise ConfigError("an attentive decoder needs memory_size > 0 (the encoder's output)")
        if input_feeding and style != "luong":
            raise ConfigError("input feeding needs decoder style 'luong'")
        self.style: Style = style
        self.input_feeding = input_feeding
        self.hidden_size = hidden_size
        self.memory_size = memory_size
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)
        rnn_input = embedding_size
        if style == "bahdanau":
            rnn_input += memory_size
        elif input_feeding:
            rnn_input += hidden_size
        self.rnn = Recurrent(cell, rnn_input, hidden_size, num_layers, dropout=dropout)
        self.attention = attention
        self.combine: nn.Linear | None = None
        if style == "bahdanau":
            self.combine = nn.Linear(hidden_size + memory_size + embedding_size, hidden_size)
        elif style == "luong":
            self.combine = nn.Linear(memory_size + hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, vocab_size)

    # ----------------------------------------------------------------------- state

    def initial_state(self, hidden: State, memory: Tensor | None = None) -> DecoderState:
        """The state before the first step, from an initial hidden state (L, B, H) (or
        ``(h, c)``), e.g. the encoder's final state bridged to the decoder's size, and the
        memory (B, S, M) the attention will read."""
        h = hidden[0] if isinstance(hidden, tuple) else hidden
        feed = h.new_zeros(h.size(1), self.hidden_size) if self.input_feeding else None
        keys = None
        if self.attention is not None and memory is not None:
            keys = cast(Attend, self.attention).project_keys(memory)
        return DecoderState(hidden, feed, keys)

    def select_state(self, state: DecoderState, index: Tensor) -> DecoderState:
        """Keep / reorder the batch rows of ``state`` by ``index`` (K,)."""
        hidden = state.hidden
        if isinstance(hidden, tuple):
            picked: State = (hidden[0].index_select(1, index), hidden[1].index_select(1, index))
        else:
            picked = hidden.index_select(1, index)
        feed = None if state.feed is None else state.feed.index_select(0, index)
        keys = None if state.keys is None else state.keys.index_select(0, index)
        return DecoderState(picked, feed, keys)

    def reorder_hypotheses(self, state: DecoderState, index: Tensor) -> DecoderState:
        """:meth:`select_state` for an ``index`` (K,) that moves each row only among the
        rows of its own source (beam search's parents): the projected keys, the same on
        every row of a source, are kept as they are instead of copied."""
        reordered = self.select_state(state._replace(keys=None), index)
        return reordered._replace(keys=state.keys)

    # ----------------------------------------------------------------------- one step

    def step(
        self,
        tokens: Tensor,
        state: DecoderState,
        memory: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One step: ``tokens`` (B,) ids of y_{t-1} -> logits (B, V), the new state and
        the attention weights a_t (B, S) (None for style ``none``)."""
        embedded = self.dropout(self.embedding(tokens))  # (B, E)
        weights: Tensor | None = None
        if self.style == "bahdanau":
            query = _top(state.hidden).unsqueeze(1)
            context, weights = self._attend(query, memory, mask, state.keys)
            rnn_in = torch.cat([embedded, context[:, 0]], dim=-1)
            top, hidden = self._advance(rnn_in, state.hidden)
            assert self.combine is not None
            out = torch.tanh(self.combine(torch.cat([top, context[:, 0], embedded], dim=-1)))
        else:
            rnn_in = embedded
            if self.input_feeding:
                assert state.feed is not None
                rnn_in = torch.cat([embedded, state.feed], dim=-1)
            top, hidden = self._advance(rnn_in, state.hidden)
            out = top
            if self.style == "luong":
                context, weights = self._attend(top.unsqueeze(1), memory, mask, state.keys)
                assert self.combine is not None
                out = torch.tanh(self.combine(torch.cat([context[:, 0], top], dim=-1)))
        logits = self.output(self.dropout(out))  # (B, V)
        feed = out if self.input_feeding else None
        new_state = DecoderState(hidden, feed, state.keys)
        return logits, new_state, None if weights is None else weights[:, 0]

    def _advance(self, rnn_in: Tensor, hidden: State) -> tuple[Tensor, State]:
        hidden = _as_dtype(hidden, rnn_in.dtype)  # under autocast a step's state is bf16
        output, hidden = self.rnn(rnn_in.unsqueeze(1), hidden)  # (B, 1, H)
        return output[:, 0], hidden

    def _attend(
        self, query: Tensor, memory: Tensor | None, mask: Tensor | None, keys: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if memory is None or self.attention is None:
            raise ValueError(f"decoder style {self.style!r} needs the encoder memory")
        return cast(Attend, self.attention)(query, memory, None, mask, keys)

    # ----------------------------------------------------------------------- teacher forcing

    def forward(
        self,
        inputs: Tensor,
        state: DecoderState,
        memory: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        sampling_prob: float = 0.0,
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """Teacher forcing: ``inputs`` (B, T) = y_0 (BOS) ... y_{T-1} -> logits (B, T, V),
        the state after step T and the attention weights (B, T, S) (None for ``none``).

        Positions after a sequence's end (padding) do not change earlier outputs (the
        decoder is causal), so the caller masks them out of the loss."""
        if not 0.0 <= sampling_prob <= 1.0:
            raise ConfigError(
                f"scheduled sampling probability must be in [0, 1], got {sampling_prob}"
            )
        if self.style != "bahdanau" and not self.input_feeding and sampling_prob == 0.0:
            return self._forward_parallel(inputs, state, memory, mask)
        logits_steps: list[Tensor] = []
        weight_steps: list[Tensor] = []
        tokens = inputs[:, 0]
        for t in range(inputs.size(1)):
            if t > 0:
                tokens = inputs[:, t]
                if sampling_prob > 0.0:
                    tokens = self._scheduled(tokens, logits_steps[-1], sampling_prob)
            logits, state, weights = self.step(tokens, state, memory, mask)
            logits_steps.append(logits)
            if weights is not None:
                weight_steps.append(weights)
        stacked = torch.stack(weight_steps, dim=1) if weight_steps else None
        return torch.stack(logits_steps, dim=1), state, stacked

    def _forward_parallel(
        self, inputs: Tensor, state: DecoderState, memory: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        embedded = self.dropout(self.embedding(inputs))  # (B, T, E)
        tops, hidden = self.rnn(embedded, _as_dtype(state.hidden, embedded.dtype))  # (B, T, H)
        weights: Tensor | None = None
        out = tops
        if self.style == "luong":
            context, weights = self._attend(tops, memory, mask, state.keys)  # (B, T, M), (B, T, S)
            assert self.combine is not None
            out = torch.tanh(self.combine(torch.cat([context, tops], dim=-1)))
        return self.output(self.dropout(out)), DecoderState(hidden, None, state.keys), weights

    def _scheduled(self, gold: Tensor, previous_logits: Tensor, prob: float) -> Tensor:
        """Gold tokens (B,), each replaced with probability ``prob`` by a token drawn from
        the model's previous distribution (B, V)."""
        with torch.no_grad():
            probs = torch.softmax(previous_logits.float(), dim=-1)
            drawn = torch.multinomial(probs, 1).squeeze(-1)
            use_model = torch.rand(gold.shape, device=gold.device) < prob
        return torch.where(use_model, drawn, gold)


def _top(hidden: State) -> Tensor:
    """The top layer's hidden state (B, H)."""
    h = hidden[0] if isinstance(hidden, tuple) else hidden
    return h[-1]


def _as_dtype(hidden: State, dtype: torch.dtype) -> State:
    if isinstance(hidden, tuple):
        return (hidden[0].to(dtype), hidden[1].to(dtype))
    return hidden.to(dtype)

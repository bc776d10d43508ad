"""Decoding from any autoregressive model: greedy, sampling (temperature, top-k, top-p)
and beam search, over one state protocol.

A model is decodable if it has

    start(prompt)            (B, T) ids        -> (logits (B, V), state)
    step(tokens, state)      (B,) ids, state   -> (logits (B, V), state)
    select_state(state, idx) keep/reorder batch rows of the state by index (K,)

``start`` consumes the prompt (teacher forcing) and returns the distribution of the next
token. Greedy and sampling are generators that yield one token id at a time, so callers
can stream text as it is produced. The prompt must be on the model's device; every
tensor made here is made on the logits' device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.contract import Decodable
from seqlab.errors import ConfigError


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Keep the ``top_k`` largest logits and the smallest set whose probability reaches
    ``top_p`` (nucleus); the rest become -inf. logits: (B, V)."""
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_k must be >= 0 and top_p in (0, 1], got {top_k}, {top_p}")
    if top_k > 0:
        k = min(top_k, logits.size(-1))
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(-1) - probs  # mass strictly before each token
        drop_sorted = before >= top_p  # the first token is always kept
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def sample(
    model: Decodable,
    prompt: Tensor,
    max_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    eos: int | None = None,
) -> Iterator[int]:
    """Yield up to ``max_tokens`` ids for one prompt (1, T); ``temperature`` 0 is greedy."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    logits, state = model.start(prompt)
    for _ in range(max_tokens):
        if temperature == 0:
            token = logits.argmax(-1)  # (1,)
        else:
            probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
            token = draw(probs, generator)
        yield int(token)
        if eos is not None and int(token) == eos:
            return
        logits, state = model.step(token, state)


def draw(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(B,) one token per row of ``probs`` (B, V), drawn with ``generator`` on its own
    device (a CPU generator gives the same draws whichever device the model is on)."""
    if generator is not None and generator.device != probs.device:
        picked = torch.multinomial(probs.to(generator.device), 1, generator=generator)
        return picked.squeeze(-1).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def greedy(
    model: Decodable, prompt: Tensor, max_tokens: int, eos: int | None = None
) -> Iterator[int]:
    return sample(model, prompt, max_tokens, temperature=0.0, eos=eos)


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]
    logprob: float

    def score(self, length_penalty: float) -> float:
        """Length-normalised log probability (GNMT: ((5 + |y|) / 6) ** alpha)."""
        return self.logprob / (((5 + len(self.tokens)) / 6) ** length_penalty)


@torch.no_grad()
def beam_search(
    model: Decodable,
    prompt: Tensor,
    max_tokens: int,
    *,
    beam_size: int = 5,
    eos: int | None = None,
    length_penalty: float = 0.0,
) -> list[Hypothesis]:
    """The ``beam_size`` best continuations of one prompt (1, T), best first.

    Each step expands every live hypothesis by every token and keeps the ``beam_size``
    highest log probabilities; hypotheses that emit ``eos`` are finished.
    """
    if beam_size < 1:
        raise ConfigError(f"beam_size must be >= 1, got {beam_size}")
    logits, state = model.start(prompt)
    logprobs = torch.log_softmax(logits, dim=-1)  # (1, V)
    beams = [Hypothesis((), 0.0)]
    finished: list[Hypothesis] = []
    for _ in range(max_tokens):
        device = logprobs.device
        scores = torch.tensor([b.logprob for b in beams], device=device).unsqueeze(-1)
        scores = scores + logprobs  # (K, V)
        vocab = scores.size(-1)
        top = torch.topk(scores.flatten(), min(beam_size, scores.numel()))
        keep_rows, new_beams, new_tokens = [], [], []
        for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            row, token = divmod(flat, vocab)
            hyp = Hypothesis(beams[row].tokens + (token,), value)
            if eos is not None and token == eos:
                finished.append(hyp)
            else:
                keep_rows.append(row)
                new_beams.append(hyp)
                new_tokens.append(token)
        if not new_beams or len(finished) >= beam_size:
            break
        beams = new_beams
        state = model.select_state(state, torch.tensor(keep_rows, device=device))
        logits, state = model.step(torch.tensor(new_tokens, device=device), state)
        logprobs = torch.log_softmax(logits, dim=-1)
    pool = finished + (beams if len(finished) < beam_size else [])
    pool.sort(key=lambda h: h.score(length_penalty), reverse=True)
    return pool[:beam_size]


def sequence_logprob(model: Decodable, prompt: Tensor, tokens: list[int]) -> float:
    """log P(tokens | prompt) under the model (for tests and rescoring)."""
    total = 0.0
    with torch.no_grad():
        logits, state = model.start(prompt)
        for token in tokens:
            total += float(torch.log_softmax(logits, dim=-1)[0, token])
            logits, state = model.step(torch.tensor([token], device=logits.device), state)
    return total if math.isfinite(total) else float("-inf")

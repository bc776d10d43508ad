"""Decoding from any autoregressive model: greedy, sampling (temperature, top-k, top-p)
and beam search, over two state protocols.

A language model is decodable if it has

    start(prompt)            (B, T) ids        -> (logits (B, V), state)
    step(tokens, state)      (B,) ids, state   -> (logits (B, V), state)
    select_state(state, idx) keep/reorder batch rows of the state by index (K,)

``start`` consumes the prompt (teacher forcing) and returns the distribution of the next
token. Greedy and sampling are generators that yield one token id at a time, so callers
can stream text as it is produced; :func:`sample_streams` samples many prompts, each with
its own options and generator, in one batched step at a time (the service's
micro-batches). The prompt must be on the model's device; every tensor made here is made
on the logits' device.

A decoder conditioned on an encoder memory (an encoder-decoder, a captioner) follows
:class:`~seqlab.contract.StepDecodable`:

    step(tokens, state, memory, mask)  (B,) ids -> (logits (B, V), state, weights (B, S) | None)
    select_state(state, idx)

and is decoded a batch of sources at a time by :func:`greedy_batch`, :func:`sample_batch`
and :func:`beam_search_batch`: every source has its own maximum output length
(:func:`max_lengths`, relative to its length), rows whose output has ended leave the batch,
and each output comes back with the attention weights of each of its steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from seqlab.contract import Decodable, SourceSharedState, StepDecodable
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
        drop_sorted = before >= top_p
        drop_sorted[..., 0] = False  # the most likely token always stays (a top_p that
        # rounds to 0 in the logits' dtype would otherwise drop every token)
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
        token = next_token(logits, temperature, top_k, top_p, generator)  # (1,)
        yield int(token)
        if eos is not None and int(token) == eos:
            return
        logits, state = model.step(token, state)


def next_token(
    logits: Tensor,
    temperature: float,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B,) the next token of each row of ``logits`` (B, V): the most likely for
    ``temperature`` 0, else drawn from the filtered, tempered distribution."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    return draw(probs, generator)


@dataclass(frozen=True)
class Stream:
    """One sampling request of :func:`sample_streams`: what :func:`sample` takes."""

    prompt: Tensor
    """(1, T) ids on the model's device."""
    max_tokens: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    generator: torch.Generator | None = None


@torch.no_grad()
def sample_streams(model: Decodable, streams: Sequence[Stream]) -> list[list[int]]:
    """The tokens :func:`sample` gives each stream alone, computed for all at once.

    Prompts of the same length start together (one ``start`` of (G, T)); then every step
    is one batched ``step`` over the streams still going, and streams leave the batch
    (``select_state``) when they have their ``max_tokens``. Each stream picks its token
    from its own row of the logits with its own options and generator, exactly as
    :func:`sample` does, so only the model's batched arithmetic can differ from decoding
    each stream alone (float rounding; tested equal on the tiny models).
    """
    for stream in streams:
        if stream.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {stream.temperature}")
    tokens: list[list[int]] = [[] for _ in streams]
    by_length: dict[int, list[int]] = {}
    for i, stream in enumerate(streams):
        if stream.max_tokens > 0:
            by_length.setdefault(stream.prompt.size(1), []).append(i)
    for active in by_length.values():
        logits, state = model.start(torch.cat([streams[i].prompt for i in active]))
        while True:
            chosen = [
                int(next_token(logits[row : row + 1], s.temperature, s.top_k, s.top_p, s.generator))
                for row, s in enumerate(streams[i] for i in active)
            ]
            for i, token in zip(active, chosen, strict=True):
                tokens[i].append(token)
            keep = [r for r, i in enumerate(active) if len(tokens[i]) < streams[i].max_tokens]
            if not keep:
                break
            step = torch.tensor(chosen, device=logits.device)
            if len(keep) < len(active):
                index = torch.tensor(keep, device=logits.device)
                state = model.select_state(state, index)
                step = step.index_select(0, index)
                active = [active[r] for r in keep]
            logits, state = model.step(step, state)
    return tokens


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
        return length_normalised(self.logprob, len(self.tokens), length_penalty)


Normalisation = Literal["gnmt", "average"]


def length_normalised(
    logprob: float, length: int, length_penalty: float, mode: Normalisation = "gnmt"
) -> float:
    """The ranking score of an output of ``length`` steps: ``gnmt`` divides the log
    probability by ((5 + |y|) / 6) ** alpha (Wu et al. 2016), ``average`` by |y| ** alpha
    (alpha 1: the mean log probability per token); alpha 0 leaves it as it is."""
    if length_penalty == 0.0:
        return logprob
    if mode == "gnmt":
        return logprob / (((5 + length) / 6) ** length_penalty)
    if mode == "average":
        return logprob / (max(length, 1) ** length_penalty)
    raise ConfigError(f"length normalisation must be 'gnmt' or 'average', got {mode!r}")


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


# --------------------------------------------------------------------------- conditioned


@dataclass(frozen=True)
class Decoded:
    """One output of a conditioned decoder (:func:`greedy_batch`, :func:`beam_search_batch`)."""

    tokens: tuple[int, ...]
    """The emitted ids, EOS left out."""
    logprob: float
    """log P(tokens, then EOS if ``finished`` | source) under the model."""
    score: float
    """What outputs are ranked by: ``logprob`` after length normalisation."""
    finished: bool
    """True when the output ended with EOS, False when it was cut at its maximum length."""
    attention: Tensor | None
    """(steps, S) on the CPU: the weights over the (padded) source of each step, one row
    per token and one for EOS when ``finished``; None for decoders without attention."""


def max_lengths(
    source_lengths: Tensor, ratio: float = 1.5, offset: int = 10, limit: int | None = None
) -> Tensor:
    """(B,) the most steps each output may take: ``ratio * |x| + offset`` (fairseq's
    max_len_a / max_len_b), at least 1 and at most ``limit``."""
    if ratio < 0 or offset < 0 or (limit is not None and limit < 1):
        raise ConfigError(
            f"max length needs ratio >= 0, offset >= 0, limit >= 1; got {ratio}, {offset}, {limit}"
        )
    lengths = (source_lengths.float() * ratio).floor().long() + offset
    lengths = lengths.clamp(min=1)
    return lengths if limit is None else lengths.clamp(max=limit)


def _device(memory: Tensor | None, lengths: Tensor) -> torch.device:
    return memory.device if memory is not None else lengths.device


def _keep_rows(
    model: StepDecodable, state: Any, memory: Tensor | None, mask: Tensor | None, index: Tensor
) -> tuple[Any, Tensor | None, Tensor | None]:
    state = model.select_state(state, index)
    memory = None if memory is None else memory.index_select(0, index)
    mask = None if mask is None else mask.index_select(0, index)
    return state, memory, mask


@torch.no_grad()
def sample_batch(
    model: StepDecodable,
    state: Any,
    memory: Tensor | None,
    mask: Tensor | None,
    *,
    bos: int,
    eos: int,
    max_lengths: Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[Decoded]:
    """One output per source of the batch, each token drawn from the model's distribution
    (``temperature`` 0: the most probable token, greedy). ``state`` is the decoder's
    initial state for the B sources, ``max_lengths`` (B,) the most steps of each output."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    batch = max_lengths.numel()
    limits = [int(n) for n in max_lengths.tolist()]
    device = _device(memory, max_lengths)
    tokens = torch.full((batch,), bos, dtype=torch.long, device=device)
    active = list(range(batch))  # the source of each row
    emitted: list[list[int]] = [[] for _ in range(batch)]
    logprobs = [0.0] * batch
    weights_of: list[list[Tensor]] = [[] for _ in range(batch)]
    results: list[Decoded | None] = [None] * batch

    def finish(source: int, ended: bool) -> None:
        rows = weights_of[source]
        attention = torch.stack(rows) if rows else None
        results[source] = Decoded(
            tuple(emitted[source]), logprobs[source], logprobs[source], ended, attention
        )

    step = 0
    while active:
        logits, state, weights = model.step(tokens, state, memory, mask)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (A, V)
        if temperature == 0:
            chosen = logp.argmax(-1)
        else:
            scaled = filter_logits(logits.float() / temperature, top_k, top_p)
            chosen = draw(torch.softmax(scaled, dim=-1), generator)
        step += 1
        chosen_logp = logp.gather(1, chosen.unsqueeze(1)).squeeze(1).tolist()
        step_weights = None if weights is None else weights.float().cpu()
        keep: list[int] = []
        for row, (source, token) in enumerate(zip(active, chosen.tolist(), strict=True)):
            logprobs[source] += chosen_logp[row]
            if step_weights is not None:
                weights_of[source].append(step_weights[row])
            if token == eos:
                finish(source, True)
                continue
            emitted[source].append(token)
            if step >= limits[source]:
                finish(source, False)
            else:
                keep.append(row)
        if len(keep) < len(active):
            if not keep:
                break
            index = torch.tensor(keep, device=device)
            state, memory, mask = _keep_rows(model, state, memory, mask, index)
            chosen = chosen.index_select(0, index)
            active = [active[row] for row in keep]
        tokens = chosen
    return [r for r in results if r is not None]


def greedy_batch(
    model: StepDecodable,
    state: Any,
    memory: Tensor | None,
    mask: Tensor | None,
    *,
    bos: int,
    eos: int,
    max_lengths: Tensor,
) -> list[Decoded]:
    """The most probable token at every step, for each source of the batch."""
    return sample_batch(
        model, state, memory, mask, bos=bos, eos=eos, max_lengths=max_lengths, temperature=0.0
    )


@torch.no_grad()
def beam_search_batch(
    model: StepDecodable,
    state: Any,
    memory: Tensor | None,
    mask: Tensor | None,
    *,
    bos: int,
    eos: int,
    max_lengths: Tensor,
    beam_size: int = 5,
    n_best: int = 1,
    length_penalty: float = 0.0,
    normalisation: Normalisation = "gnmt",
) -> list[list[Decoded]]:
    """The ``n_best`` best outputs of each source of the batch, best first.

    All B sources search at once, K = ``beam_size`` rows each. At every step each live
    hypothesis is extended by every token; of the 2K best extensions of a source (by log
    probability), those among the first K that end with EOS are finished, and the K best
    that do not stay live. A source is done when it has K finished outputs or its output
    reached ``max_lengths`` (its live hypotheses are then kept as unfinished outputs);
    done sources leave the batch. Outputs are ranked by :func:`length_normalised` score.
    """
    if beam_size < 1 or not 1 <= n_best <= beam_size:
        raise ConfigError(
            f"beam search needs beam_size >= 1 and 1 <= n_best <= beam_size, "
            f"got {beam_size} and {n_best}"
        )
    k = beam_size
    batch = max_lengths.numel()
    limits = [int(n) for n in max_lengths.tolist()]
    device = _device(memory, max_lengths)
    expand = torch.arange(batch, device=device).repeat_interleave(k)
    state, memory, mask = _keep_rows(model, state, memory, mask, expand)
    tokens = torch.full((batch * k,), bos, dtype=torch.long, device=device)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one hypothesis to start from; the others join at the first step
    history = torch.empty((batch * k, 0), dtype=torch.long, device=device)
    attention: Tensor | None = None  # (rows, t, S): the weights of each step so far
    active = list(range(batch))  # the source of each block of k rows
    finished: list[list[Decoded]] = [[] for _ in range(batch)]

    def keep_output(
        source: int, row: int, token: int | None, logprob: float, w: Tensor | None
    ) -> None:
        steps = history[row].tolist()
        emitted = tuple(steps if token is None else [*steps, token])
        rows = None
        if w is not None:
            past = attention[row] if attention is not None else w.new_zeros(0, w.size(-1))
            rows = torch.cat([past, w[row].unsqueeze(0)]).float().cpu()
        length = len(steps) + 1
        score = length_normalised(logprob, length, length_penalty, normalisation)
        finished[source].append(Decoded(emitted, logprob, score, token is None, rows))

    step = 0
    while active:
        blocks = len(active)
        logits, state, weights = model.step(tokens, state, memory, mask)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (A·K, V)
        vocab = logp.size(-1)
        step += 1
        candidates = (scores.unsqueeze(-1) + logp.view(blocks, k, vocab)).view(blocks, k * vocab)
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=-1)  # (A, C)
        parent = torch.div(top_index, vocab, rounding_mode="floor")
        parent = parent + (torch.arange(blocks, device=device) * k).unsqueeze(1)  # row ids
        token = top_index % vocab
        is_eos = token == eos
        live = top_scores.masked_fill(is_eos, float("-inf")).topk(k, dim=-1).indices  # (A, K)
        live_scores = top_scores.gather(1, live)
        live_parent = parent.gather(1, live)
        live_token = token.gather(1, live)
        ended = (is_eos[:, :k] & torch.isfinite(top_scores[:, :k])).nonzero().tolist()
        if ended:
            ended_scores, ended_parents = top_scores[:, :k].tolist(), parent[:, :k].tolist()
            for block, column in ended:
                logprob, row = ended_scores[block][column], ended_parents[block][column]
                keep_output(active[block], row, None, logprob, weights)
        keep_blocks: list[int] = []
        for block, source in enumerate(active):
            if len(finished[source]) >= k:
                continue
            if step >= limits[source]:
                for column in range(k):
                    logprob = float(live_scores[block, column])
                    if math.isfinite(logprob):
                        row, last = int(live_parent[block, column]), int(live_token[block, column])
                        keep_output(source, row, last, logprob, weights)
                continue
            keep_blocks.append(block)
        if not keep_blocks:
            break
        kept = torch.tensor(keep_blocks, device=device)
        rows = live_parent.index_select(0, kept).flatten()  # (A'·K,) parents of the live
        tokens = live_token.index_select(0, kept).flatten()
        scores = live_scores.index_select(0, kept)
        history = torch.cat([history.index_select(0, rows), tokens.unsqueeze(1)], dim=1)
        if weights is not None:
            past = attention.index_select(0, rows) if attention is not None else None
            now = weights.index_select(0, rows).unsqueeze(1)
            attention = now if past is None else torch.cat([past, now], dim=1)
        if len(keep_blocks) == blocks and isinstance(model, SourceSharedState):
            state = model.reorder_hypotheses(state, rows)  # per-source parts stay
        else:
            state = model.select_state(state, rows)
        if len(keep_blocks) < blocks:
            # The K rows of a source hold the same memory and mask and a parent is always
            # a row of its own source, so these follow the sources, not the hypotheses:
            # reordered only when sources leave.
            same = (kept.unsqueeze(1) * k + torch.arange(k, device=device)).flatten()
            memory = None if memory is None else memory.index_select(0, same)
            mask = None if mask is None else mask.index_select(0, same)
        active = [active[block] for block in keep_blocks]
    return [sorted(f, key=lambda d: d.score, reverse=True)[:n_best] for f in finished]

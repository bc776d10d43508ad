"""Batched decoding of a conditioned decoder: greedy, sampling, beam search (brute force,
width 1 = greedy, batched = one source at a time, n-best, length limits)."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqlab.decode import (
    Decoded,
    beam_search_batch,
    greedy_batch,
    length_normalised,
    max_lengths,
    sample_batch,
)
from seqlab.errors import ConfigError
from seqlab.nn.decoder import DecoderState, RecurrentDecoder

EOS, BOS = 0, 1


def tiny_decoder(vocab: int = 5, seed: int = 0) -> RecurrentDecoder:
    torch.manual_seed(seed)
    decoder = RecurrentDecoder("gru", vocab, 6, 8, num_layers=2).eval()
    with torch.no_grad():  # sharper distributions than the default init gives
        decoder.output.weight.mul_(8.0)
        decoder.output.bias[EOS] -= 1.0  # outputs of a few tokens, not all EOS at once
    return decoder


def start(decoder: RecurrentDecoder, batch: int, seed: int = 1) -> DecoderState:
    g = torch.Generator().manual_seed(seed)
    return decoder.initial_state(torch.randn(2, batch, 8, generator=g))


def brute_force(
    decoder: RecurrentDecoder, state: DecoderState, limit: int, alpha: float
) -> tuple[tuple[int, ...], float]:
    """The best-scoring output of one source over every output up to ``limit`` steps."""
    vocab = decoder.vocab_size
    best: tuple[tuple[int, ...], float] = ((), float("-inf"))
    others = [t for t in range(vocab) if t != EOS]
    outputs = [(seq, True) for n in range(limit) for seq in itertools.product(others, repeat=n)]
    outputs += [(seq, False) for seq in itertools.product(others, repeat=limit)]
    with torch.no_grad():
        for seq, ended in outputs:
            steps = [*seq, EOS] if ended else list(seq)
            s, token, logprob = state, BOS, 0.0
            for nxt in steps:
                logits, s, _ = decoder.step(torch.tensor([token]), s)
                logprob += float(torch.log_softmax(logits, -1)[0, nxt])
                token = nxt
            score = length_normalised(logprob, len(steps), alpha)
            if score > best[1]:
                best = (tuple(seq), score)
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_finds_the_best_output_by_brute_force(alpha: float) -> None:
    decoder = tiny_decoder()
    for seed in range(3):
        state = start(decoder, 1, seed)
        # 64 beams keep every prefix of up to 3 steps over 4 non-EOS tokens: exhaustive
        best = beam_search_batch(
            decoder,
            state,
            None,
            None,
            bos=BOS,
            eos=EOS,
            max_lengths=torch.tensor([3]),
            beam_size=64,
            length_penalty=alpha,
        )[0][0]
        tokens, score = brute_force(decoder, state, 3, alpha)
        assert best.tokens == tokens
        assert best.score == pytest.approx(score, abs=1e-5)


def test_narrow_beam_can_miss_what_a_wide_one_finds() -> None:
    """Beam width matters (the test above is not trivially true for any width)."""
    decoder = tiny_decoder(vocab=7, seed=3)
    found = []
    for seed in range(12):
        state = start(decoder, 1, seed)
        kwargs = dict(bos=BOS, eos=EOS, max_lengths=torch.tensor([4]))
        narrow = beam_search_batch(decoder, state, None, None, beam_size=1, **kwargs)[0][0]
        wide = beam_search_batch(decoder, state, None, None, beam_size=16, **kwargs)[0][0]
        assert wide.score >= narrow.score - 1e-6
        found.append(wide.score > narrow.score + 1e-6)
    assert any(found)


def test_beam_width_one_equals_greedy() -> None:
    decoder = tiny_decoder(vocab=9, seed=2)
    state = start(decoder, 6)
    limits = torch.tensor([1, 3, 8, 8, 12, 5])
    greedy = greedy_batch(decoder, state, None, None, bos=BOS, eos=EOS, max_lengths=limits)
    beam = beam_search_batch(
        decoder, state, None, None, bos=BOS, eos=EOS, max_lengths=limits, beam_size=1
    )
    assert [b[0].tokens for b in beam] == [g.tokens for g in greedy]
    assert [b[0].finished for b in beam] == [g.finished for g in greedy]
    for b, g in zip(beam, greedy, strict=True):
        assert b[0].logprob == pytest.approx(g.logprob, abs=1e-5)
    assert any(len(g.tokens) > 1 for g in greedy)
    for g, limit in zip(greedy, limits.tolist(), strict=True):
        assert len(g.tokens) <= limit
        assert g.finished or len(g.tokens) == limit


def test_batched_beam_equals_one_source_at_a_time() -> None:
    decoder = tiny_decoder(vocab=9, seed=4)
    state = start(decoder, 5, seed=7)
    limits = torch.tensor([6, 2, 9, 4, 7])
    kwargs = dict(bos=BOS, eos=EOS, beam_size=3, n_best=3, length_penalty=0.6)
    together = beam_search_batch(decoder, state, None, None, max_lengths=limits, **kwargs)
    for i in range(5):
        alone_state = decoder.select_state(state, torch.tensor([i]))
        alone = beam_search_batch(
            decoder, alone_state, None, None, max_lengths=limits[i : i + 1], **kwargs
        )[0]
        assert [d.tokens for d in together[i]] == [d.tokens for d in alone]
        assert [d.score for d in together[i]] == pytest.approx([d.score for d in alone], abs=1e-5)
        assert len(alone) == 3
        assert [d.score for d in alone] == sorted((d.score for d in alone), reverse=True)


def test_beam_scores_are_the_model_logprob() -> None:
    decoder = tiny_decoder(vocab=6, seed=5)
    state = start(decoder, 2)
    results = beam_search_batch(
        decoder, state, None, None, bos=BOS, eos=EOS, max_lengths=torch.tensor([5, 5]), n_best=4
    )
    for i, hyps in enumerate(results):
        for hyp in hyps:
            steps = [*hyp.tokens, EOS] if hyp.finished else list(hyp.tokens)
            s, token, total = decoder.select_state(state, torch.tensor([i])), BOS, 0.0
            with torch.no_grad():
                for nxt in steps:
                    logits, s, _ = decoder.step(torch.tensor([token]), s)
                    total += float(torch.log_softmax(logits, -1)[0, nxt])
                    token = nxt
            assert hyp.logprob == pytest.approx(total, abs=1e-4)


def test_sampling_is_seeded_and_temperature_zero_is_greedy() -> None:
    decoder = tiny_decoder(vocab=9, seed=6)
    state = start(decoder, 4)
    limits = torch.full((4,), 10)

    def run(seed: int, temperature: float = 1.0) -> list[Decoded]:
        g = torch.Generator().manual_seed(seed)
        return sample_batch(
            decoder,
            state,
            None,
            None,
            bos=BOS,
            eos=EOS,
            max_lengths=limits,
            temperature=temperature,
            generator=g,
        )

    tokens = [[d.tokens for d in run(seed)] for seed in range(4)]
    assert tokens[0] == [d.tokens for d in run(0)]
    assert len({tuple(t) for t in tokens}) > 1
    greedy = greedy_batch(decoder, state, None, None, bos=BOS, eos=EOS, max_lengths=limits)
    assert [d.tokens for d in run(9, 0.0)] == [d.tokens for d in greedy]


def test_max_lengths_relative_to_source() -> None:
    lengths = torch.tensor([0, 4, 10])
    assert max_lengths(lengths, 1.5, 2).tolist() == [2, 8, 17]
    assert max_lengths(lengths, 2.0, 0, limit=12).tolist() == [1, 8, 12]
    with pytest.raises(ConfigError, match="ratio"):
        max_lengths(lengths, -1.0, 0)


def test_bad_beam_arguments() -> None:
    decoder = tiny_decoder()
    state = start(decoder, 1)
    with pytest.raises(ConfigError, match="n_best"):
        beam_search_batch(
            decoder, state, None, None, bos=BOS, eos=EOS, max_lengths=torch.tensor([3]),
            beam_size=2, n_best=3,
        )  # fmt: skip

"""Decoding: filtering, greedy, sampling, beam search against brute force."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import Tensor

from seqlab.decode import (
    Stream,
    beam_search,
    filter_logits,
    greedy,
    sample,
    sample_streams,
    sequence_logprob,
)
from seqlab.errors import ConfigError
from seqlab.models.rnn_lm import RNNLM, RNNLMConfig
from seqlab.models.transformer_lm import TransformerLM, TransformerLMConfig


class Markov:
    """A fixed first-order Markov chain as a decodable model (state: last token)."""

    def __init__(self, vocab: int = 4, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(vocab, vocab, generator=g) * 2  # logits[prev, next]

    def start(self, prompt: Tensor) -> tuple[Tensor, Any]:
        last = prompt[:, -1]
        return self.table[last], last

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.table[tokens], tokens

    def select_state(self, state: Any, index: Tensor) -> Any:
        return state.index_select(0, index)


def test_filter_top_k_and_top_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept_k = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept_k.tolist() == [[True, True, False, False]]
    kept_p = torch.isfinite(filter_logits(logits, top_p=0.8))
    assert kept_p.tolist() == [[True, True, False, False]]  # 0.5 + 0.3 reaches 0.8
    kept_p = torch.isfinite(filter_logits(logits, top_p=0.81))
    assert kept_p.tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).sum() == 1


def test_greedy_follows_argmax() -> None:
    model = Markov()
    tokens = list(greedy(model, torch.tensor([[0]]), 6))
    prev = 0
    for token in tokens:
        assert token == int(model.table[prev].argmax())
        prev = token


def test_sampling_is_seeded_and_respects_top_k() -> None:
    model = Markov()

    def run(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return list(sample(model, torch.tensor([[1]]), 30, temperature=1.0, generator=generator))

    assert run(3) == run(3) and run(3) != run(4)
    top1 = list(
        sample(model, torch.tensor([[1]]), 10, top_k=1, generator=torch.Generator().manual_seed(0))
    )
    assert top1 == list(greedy(model, torch.tensor([[1]]), 10))


@pytest.mark.parametrize("beam", [1, 3, 16])
def test_beam_search_against_brute_force(beam: int) -> None:
    model = Markov(vocab=4, seed=1)
    prompt = torch.tensor([[2]])
    length = 4
    best = beam_search(model, prompt, length, beam_size=beam)[0]
    if beam == 1:
        assert list(best.tokens) == list(greedy(model, prompt, length))
    scores = {
        seq: sequence_logprob(model, prompt, list(seq))
        for seq in itertools.product(range(4), repeat=length)
    }
    exact = max(scores, key=scores.__getitem__)
    if beam >= 16:  # wide enough to be exact for 4 tokens over 4 symbols
        assert best.tokens == exact
    assert best.logprob == pytest.approx(scores[best.tokens], abs=1e-5)
    assert best.logprob <= scores[exact] + 1e-6


class Checked(Markov):
    """The Markov chain, checking that every tensor decoding hands it is on its device."""

    def __init__(self) -> None:
        super().__init__(vocab=5, seed=2)
        self.devices: set[torch.device] = set()

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        self.devices.add(tokens.device)
        return super().step(tokens, state)

    def select_state(self, state: Any, index: Tensor) -> Any:
        self.devices.add(index.device)
        return super().select_state(state, index)


def test_decoding_allocates_on_the_logits_device() -> None:
    """With the default device set to ``meta``, every tensor decoding makes without naming
    the logits' device would land on ``meta`` (and fail or be seen by the model)."""
    model = Checked()
    prompt = torch.tensor([[1]])
    expected = beam_search(model, prompt, 4, beam_size=3)
    sampled = list(sample(model, prompt, 6, generator=torch.Generator().manual_seed(0)))
    logprob = sequence_logprob(model, prompt, [2, 3])
    with torch.device("meta"):
        assert beam_search(model, prompt, 4, beam_size=3) == expected
        again = sample(model, prompt, 6, generator=torch.Generator(device="cpu").manual_seed(0))
        assert list(again) == sampled
        assert sequence_logprob(model, prompt, [2, 3]) == logprob
    assert model.devices == {torch.device("cpu")}


def test_draw_uses_the_generators_device_and_numbers() -> None:
    from seqlab.decode import draw

    probs = torch.softmax(torch.randn(3, 7, generator=torch.Generator().manual_seed(1)), -1)
    token = draw(probs, torch.Generator().manual_seed(5))
    plain = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(5)).squeeze(-1)
    assert token.shape == (3,) and torch.equal(token, plain)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_sample_streams_give_what_each_stream_gets_alone(kind: str) -> None:
    """Prompts of different lengths, greedy and sampled streams with their own options,
    seeds and lengths, decoded together: each gets the tokens of ``sample`` alone."""
    torch.manual_seed(0)
    vocab = 13
    model: Any
    if kind == "lstm":
        model = RNNLM(vocab, RNNLMConfig(cell="lstm", embedding_size=8, hidden_size=16))
    else:
        config = TransformerLMConfig(d_model=16, num_heads=2, num_layers=2, dim_feedforward=32)
        model = TransformerLM(vocab, replace(config, block_size=12))  # some streams crop
    model.eval()
    options = [
        dict(temperature=1.0),
        dict(temperature=0.0),
        dict(temperature=0.7, top_k=3),
        dict(temperature=1.3, top_p=0.6),
        dict(temperature=1.0),
        dict(temperature=0.0),
    ]
    prompts = [[1, 2], [3], [1, 2], [4, 5, 6], [1, 2], [7, 8]]
    lengths = [15, 6, 0, 11, 15, 1]

    def streams() -> list[Stream]:
        return [
            Stream(torch.tensor([p]), n, generator=torch.Generator().manual_seed(i), **o)
            for i, (p, n, o) in enumerate(zip(prompts, lengths, options, strict=True))
        ]

    together = sample_streams(model, streams())
    alone = [list(sample(model, s.prompt, s.max_tokens, temperature=s.temperature,
                         top_k=s.top_k, top_p=s.top_p, generator=s.generator))
             for s in streams()]  # fmt: skip
    assert together == alone
    assert [len(t) for t in together] == lengths
    assert together[0] != together[4]  # same prompt, other seed: other draws
    with pytest.raises(ConfigError, match="temperature"):
        sample_streams(model, [Stream(torch.tensor([[1]]), 3, temperature=-1.0)])

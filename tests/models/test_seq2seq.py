"""The encoder-decoder: the shared battery, source padding, source reversal, bridge,
decoding through seqlab.decode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqlab.data.batching import pad_batch
from seqlab.decode import beam_search_batch, greedy_batch
from seqlab.errors import ConfigError
from seqlab.models.seq2seq import Seq2Seq, Seq2SeqBatch, Seq2SeqConfig, reverse_padded
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

PAD, BOS, EOS = 0, 2, 3
SRC_V, TGT_V = 13, 11

CONFIGS = {
    "gru_bahdanau": Seq2SeqConfig(
        embedding_size=8, encoder_hidden_size=6, hidden_size=10, attention_size=5, dropout=0.1
    ),
    "lstm_luong_feed": Seq2SeqConfig(
        cell="lstm",
        embedding_size=8,
        encoder_hidden_size=6,
        hidden_size=10,
        attention="general",
        attention_style="luong",
        input_feeding=True,
        encoder_layers=2,
        decoder_layers=2,
        reverse_source=True,
        dropout=0.1,
    ),  # fmt: skip
    "gru_none_unidirectional": Seq2SeqConfig(
        embedding_size=8,
        encoder_hidden_size=10,
        hidden_size=10,
        attention="none",
        bidirectional=False,
        decoder_layers=3,
        reverse_source=True,
    ),  # fmt: skip
    "gru_dot_luong": Seq2SeqConfig(
        embedding_size=8,
        encoder_hidden_size=5,
        hidden_size=10,
        attention="dot",
        attention_style="luong",
        encoder_layers=3,
    ),  # fmt: skip
}


def build(name: str) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(CONFIGS[name], SRC_V, TGT_V, PAD)


def make_batch(sources: list[list[int]], targets: list[list[int]]) -> Seq2SeqBatch:
    return Seq2SeqBatch(
        pad_batch(sources, PAD),
        pad_batch([[BOS, *t] for t in targets], PAD).ids,
        pad_batch([[*t, EOS] for t in targets], PAD).ids,
    )


def examples(n: int = 6, seed: int = 0) -> tuple[list[list[int]], list[list[int]]]:
    g = torch.Generator().manual_seed(seed)
    sources, targets = [], []
    for _ in range(n):
        s_len, t_len = (int(x) for x in torch.randint(1, 7, (2,), generator=g))
        sources.append(torch.randint(4, SRC_V, (s_len,), generator=g).tolist())
        targets.append(torch.randint(4, TGT_V, (t_len,), generator=g).tolist())
    return sources, targets


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shapes_and_every_parameter_gets_a_gradient(name: str) -> None:
    model = build(name)
    sources, targets = examples()
    batch = make_batch(sources, targets)
    logits, weights = model(batch)
    assert logits.shape == (6, batch.target_in.size(1), TGT_V)
    if CONFIGS[name].attention == "none":
        assert weights is None
    else:
        assert weights is not None and weights.shape == (6, batch.target_in.size(1), 6)
    assert_all_parameters_get_gradient(model, batch)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_padded_batch_equals_examples_alone(name: str) -> None:
    model = build(name).eval()
    sources, targets = examples(seed=1)
    singles = [make_batch([s], [t]) for s, t in zip(sources, targets, strict=True)]

    def token_logprobs(batch: Seq2SeqBatch) -> torch.Tensor:
        logits, _ = model(batch)
        return torch.log_softmax(logits, -1).gather(-1, batch.target_out.unsqueeze(-1))[..., 0]

    assert_batch_equals_singles(token_logprobs, make_batch(sources, targets), singles)


def test_overfits_ten_pairs() -> None:
    model = build("gru_bahdanau")
    sources, targets = examples(10, seed=2)
    assert_overfits(model, make_batch(sources, targets), steps=300, lr=1e-2, below=0.05)


def test_save_load_gives_identical_outputs(tmp_path: Path) -> None:
    sources, targets = examples()
    batch = make_batch(sources, targets)
    assert_save_load_identical(
        build("lstm_luong_feed"), lambda: build("lstm_luong_feed"), lambda m: m(batch)[0], tmp_path
    )


def test_reverse_padded_reverses_within_each_length() -> None:
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]])
    lengths = torch.tensor([3, 2, 4])
    assert reverse_padded(ids, lengths).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0], [9, 8, 7, 6]]
    features = ids.unsqueeze(-1).float().expand(3, 4, 2)
    assert reverse_padded(features, lengths)[..., 1].tolist() == [
        [3, 2, 1, 0],
        [5, 4, 0, 0],
        [9, 8, 7, 6],
    ]


def test_source_reversal_changes_the_encoding() -> None:
    forward = Seq2Seq(CONFIGS["gru_none_unidirectional"], SRC_V, TGT_V, PAD).eval()
    cfg = CONFIGS["gru_none_unidirectional"]
    backward = Seq2Seq(
        Seq2SeqConfig(**{**cfg.__dict__, "reverse_source": False}), SRC_V, TGT_V, PAD
    ).eval()
    backward.load_state_dict(forward.state_dict())
    src = pad_batch([[4, 5, 6, 7], [8, 9]], PAD)
    with torch.no_grad():
        memory_r, _, state_r = forward.encode(src)
        memory_f, _, state_f = backward.encode(src)
        flipped = pad_batch([[7, 6, 5, 4], [9, 8]], PAD)
        memory_flipped, _, state_flipped = backward.encode(flipped)
    assert not torch.allclose(state_r.hidden, state_f.hidden)
    torch.testing.assert_close(state_r.hidden, state_flipped.hidden)  # reads x reversed
    # the memory is put back in source order: position j is about source token j
    torch.testing.assert_close(memory_r, reverse_padded(memory_flipped, src.lengths))


@pytest.mark.parametrize("name", ["gru_bahdanau", "lstm_luong_feed"])
def test_decoding_a_padded_batch_equals_each_source_alone(name: str) -> None:
    model = build(name).eval()
    with torch.no_grad():
        for p in model.decoder.output.parameters():
            p.mul_(4.0)
    sources, _ = examples(5, seed=3)
    src = pad_batch(sources, PAD)
    limits = torch.full((5,), 7)
    with torch.no_grad():
        memory, mask, state = model.encode(src)
        greedy = greedy_batch(model, state, memory, mask, bos=BOS, eos=EOS, max_lengths=limits)
        beam = beam_search_batch(
            model, state, memory, mask, bos=BOS, eos=EOS, max_lengths=limits, beam_size=4
        )
        narrow = beam_search_batch(
            model, state, memory, mask, bos=BOS, eos=EOS, max_lengths=limits, beam_size=1
        )
        for i, source in enumerate(sources):
            alone = pad_batch([source], PAD)
            m, k, s = model.encode(alone)
            one = greedy_batch(model, s, m, k, bos=BOS, eos=EOS, max_lengths=limits[:1])[0]
            assert one.tokens == greedy[i].tokens
            assert one.logprob == pytest.approx(greedy[i].logprob, abs=1e-5)
            assert one.attention is not None and greedy[i].attention is not None
            width = len(source)
            torch.testing.assert_close(greedy[i].attention[:, :width], one.attention)
            assert bool((greedy[i].attention[:, width:] == 0).all())
            best = beam_search_batch(
                model, s, m, k, bos=BOS, eos=EOS, max_lengths=limits[:1], beam_size=4
            )[0][0]
            assert best.tokens == beam[i][0].tokens
    assert [b[0].tokens for b in narrow] == [g.tokens for g in greedy]


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="encoder output size"):
        Seq2SeqConfig(attention="dot", encoder_hidden_size=4, hidden_size=10).validate()
    with pytest.raises(ConfigError, match="input_feeding"):
        Seq2SeqConfig(input_feeding=True).validate()

"""The shared model battery for the tagger (softmax and CRF, char-CNN and char-LSTM)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import torch

from seqlab.data.batching import pad_batch
from seqlab.errors import ConfigError
from seqlab.models.tagger import Tagger, TaggerBatch, TaggerConfig
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_overfits,
    assert_save_load_identical,
)

WORDS, CHARS, TAGS = 12, 8, 4


def make_batch(rows: list[list[int]]) -> TaggerBatch:
    words = pad_batch(rows, 0)
    steps = words.ids.shape[1]
    chars = torch.zeros(len(rows), steps, 3, dtype=torch.long)
    lengths = torch.zeros(len(rows), steps, dtype=torch.long)
    tags = torch.full((len(rows), steps), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        for t, word in enumerate(row):
            n = 1 + word % 3
            chars[b, t, :n] = torch.tensor([(word + k) % (CHARS - 1) + 1 for k in range(n)])
            lengths[b, t] = n
            tags[b, t] = word % TAGS
    return TaggerBatch(words, chars, lengths, tags)


ROWS = [[2, 3, 4, 5, 6], [7, 8], [9, 10, 11], [3]]
CONFIGS = {
    "softmax-cnn": TaggerConfig(hidden_size=8, embedding_size=6, char_hidden_size=5, dropout=0.0),
    "crf-lstm": TaggerConfig(
        hidden_size=8,
        embedding_size=6,
        chars="lstm",
        char_hidden_size=4,
        cell="gru",
        output="crf",
        dropout=0.0,
    ),
    "plain-rnn": TaggerConfig(
        hidden_size=8, embedding_size=6, chars="none", cell="rnn_tanh", num_layers=1
    ),
}


def build(cfg: TaggerConfig) -> Tagger:
    torch.manual_seed(0)
    return Tagger(cfg, WORDS, CHARS, TAGS, unk_index=1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_battery(name: str, tmp_path: Path) -> None:
    cfg = CONFIGS[name]
    model = build(cfg)
    batch = make_batch(ROWS)
    assert model.emissions(batch).shape == (4, 5, TAGS)
    assert_all_parameters_get_gradient(model, batch)
    model.eval()
    with torch.no_grad():  # per-token outputs (B, T, K): compare each sentence's real steps
        together, tags = model.emissions(batch), model.predict(batch)
        for b, row in enumerate(ROWS):
            single = make_batch([row])
            torch.testing.assert_close(
                together[b, : len(row)], model.emissions(single)[0], atol=1e-5, rtol=1e-4
            )
            assert tags[b, : len(row)].tolist() == model.predict(single)[0].tolist()
    assert_save_load_identical(
        model, lambda: build(cfg), lambda m: cast(Tagger, m).emissions(batch), tmp_path
    )
    assert_overfits(model, batch, steps=300, lr=0.05, below=0.05)
    assert model.predict(batch)[batch.words.mask].tolist() == batch.tags[batch.words.mask].tolist()


@pytest.mark.parametrize("chars", ["cnn", "lstm"])
def test_char_features_of_repeated_words_match_running_every_token(chars: str) -> None:
    """The tagger runs each distinct spelling through the char network once; values and
    gradients must equal those of running every token, as the plain formulation does."""
    cfg = TaggerConfig(hidden_size=8, embedding_size=6, chars=chars, char_hidden_size=5)
    model = build(cfg)
    model.eval()  # no dropout, so both paths see the same network
    rows = [[2, 3, 2, 5, 3], [5, 2], [3, 3, 11], [2]]  # words repeat within and across rows
    batch = make_batch(rows)
    mask = batch.words.mask
    assert model.chars is not None
    every = model.chars(batch.chars[mask], batch.char_lengths[mask])  # (N, F), one per token
    grid = every.new_zeros(*mask.shape, every.shape[1])
    grid[mask] = every
    inputs = torch.cat([model.embedding(batch.words.ids), grid], dim=2)
    reference = model.proj(model.rnn(inputs, lengths=batch.words.lengths)[0])
    ref_grads = torch.autograd.grad(reference[mask].sum(), list(model.chars.parameters()))
    scores = model.emissions(batch)
    grads = torch.autograd.grad(scores[mask].sum(), list(model.chars.parameters()))
    torch.testing.assert_close(scores[mask], reference[mask])
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_unknown_tags_are_left_out_of_the_softmax_loss() -> None:
    model = build(CONFIGS["softmax-cnn"])
    batch = make_batch(ROWS)
    tags = batch.tags.clone()
    tags[0, 0] = -1
    out = model.loss(batch._replace(tags=tags))
    assert out.n == int(batch.words.mask.sum()) - 1


def test_word_dropout_only_in_training() -> None:
    cfg = TaggerConfig(hidden_size=8, embedding_size=6, chars="none", word_dropout=0.99)
    model = build(cfg)
    batch = make_batch(ROWS)
    model.eval()
    first = model.emissions(batch)
    torch.testing.assert_close(model.emissions(batch), first)
    model.train()
    model.dropout.p = 0.0
    model.rnn.dropout = 0.0
    assert not torch.allclose(model.emissions(batch), first)


def test_frequency_word_dropout_drops_rare_words_more() -> None:
    """Kiperwasser & Goldberg: p(drop w) = α / (count(w) + α), combined with plain word
    dropout as 1 − (1 − p_plain)(1 − p_freq); only in training."""
    counts = torch.tensor([0, 0, 1, 1, 1, 3, 3, 3, 99, 99, 99, 99])
    cfg = TaggerConfig(
        hidden_size=8, embedding_size=6, chars="none", word_dropout=0.1, word_dropout_alpha=1.0
    )
    model = Tagger(cfg, WORDS, CHARS, TAGS, unk_index=1, word_counts=counts)
    expected = 1 - 0.9 * (1 - 1.0 / (counts.double() + 1.0))
    torch.testing.assert_close(model.word_drop, expected.float())
    assert "word_drop" not in model.state_dict()  # derived from the vocabulary, not saved
    seen: list[torch.Tensor] = []
    model.embedding.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    rows = [[2, 8, 3, 9, 4, 10, 5, 11]] * 500  # counts 1, 99, 1, 99, 1, 99, 3, 99
    batch = make_batch(rows)
    torch.manual_seed(0)
    model.states(batch)
    dropped = (seen[-1] == 1).double().mean(dim=0)  # (T,) rate per position
    torch.testing.assert_close(dropped, expected[rows[0]], atol=0.06, rtol=0.0)
    model.eval()
    model.states(batch)
    assert not bool((seen[-1] == 1).any())
    with pytest.raises(ConfigError, match="count"):
        Tagger(cfg, WORDS, CHARS, TAGS, unk_index=1)


def test_auxiliary_head_learns_a_second_tag_column(tmp_path: Path) -> None:
    cfg = TaggerConfig(hidden_size=8, embedding_size=6, char_hidden_size=5, dropout=0.0)
    torch.manual_seed(0)
    model = Tagger(cfg, WORDS, CHARS, TAGS, unk_index=1, num_aux_tags=3)
    batch = make_batch(ROWS)
    mask = batch.words.mask
    aux = torch.where(mask, batch.words.ids % 3, torch.full_like(batch.words.ids, -1))
    both = batch._replace(aux_tags=aux)
    main_only = model.loss(batch).loss
    assert model.loss(both).loss.item() > main_only.item()  # the auxiliary term is added
    assert model.aux_emissions(both).shape == (4, 5, 3)
    assert_all_parameters_get_gradient(model, both)
    assert_save_load_identical(
        model,
        lambda: Tagger(cfg, WORDS, CHARS, TAGS, unk_index=1, num_aux_tags=3),
        lambda m: cast(Tagger, m).aux_emissions(both),
        tmp_path,
    )
    assert_overfits(model, both, steps=300, lr=0.05, below=0.05)
    tags, aux_pred = model.predict_both(both)
    assert aux_pred is not None
    assert tags[mask].tolist() == batch.tags[mask].tolist()
    assert aux_pred[mask].tolist() == aux[mask].tolist()


def test_no_auxiliary_head_is_a_clear_error() -> None:
    model = build(CONFIGS["softmax-cnn"])
    with pytest.raises(ConfigError, match="auxiliary"):
        model.aux_emissions(make_batch(ROWS))
    assert model.predict_both(make_batch(ROWS))[1] is None

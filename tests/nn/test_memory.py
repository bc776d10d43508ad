"""The MemN2N memory layer against the paper's equations (Sukhbaatar et al., 2015)."""

from __future__ import annotations

import math

import pytest
import torch

from seqlab.nn.memory import (
    MemoryNetwork,
    code_position_encoding,
    encode_sentences,
    position_encoding,
    time_indices,
)


def test_position_encoding_matches_the_papers_formula() -> None:
    # l_kj = (1 - j/J) - (k/d)(1 - 2j/J), j = 1..J words, k = 1..d dimensions
    J, d = 3, 4
    weights = position_encoding(torch.tensor([J]), 5, d)[0]  # (T=5, d)
    for j in range(1, J + 1):
        for k in range(1, d + 1):
            expected = (1 - j / J) - (k / d) * (1 - 2 * j / J)
            assert weights[j - 1, k - 1].item() == pytest.approx(expected, abs=1e-6)
    assert weights[J:].abs().sum() == 0  # no weight past the sentence's end
    # two values worked out by hand: j=1, k=1: 2/3 - (1/4)(1/3) = 7/12; j=3, k=4: 0 + 1 = 1
    assert weights[0, 0].item() == pytest.approx(7 / 12)
    assert weights[2, 3].item() == pytest.approx(1.0)


def test_bag_encoding_equals_the_explicit_weighted_sum() -> None:
    torch.manual_seed(0)
    d, n = 6, 2
    table = torch.randn(11, n * d)
    ids = torch.tensor([[3, 5, 7, 0, 0], [2, 0, 0, 0, 0], [4, 4, 9, 10, 1]])
    got = encode_sentences(ids, table, d, "position")  # (3, n d)
    lengths = (ids != 0).sum(-1)
    weights = position_encoding(lengths, ids.size(1), d)  # (3, T, d)
    words = table[ids].view(3, ids.size(1), n, d)  # (3, T, n, d)
    expected = (words * weights.unsqueeze(2)).sum(1).reshape(3, n * d)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    bow = encode_sentences(ids, table, d, "bow")
    torch.testing.assert_close(bow, (table[ids] * (ids != 0).unsqueeze(-1)).sum(1))


def test_time_indices_put_the_most_recent_sentence_first() -> None:
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    assert time_indices(mask).tolist() == [[2, 1, 0, 0], [0, 0, 0, 0]]


def test_random_noise_leaves_gaps_but_keeps_the_order() -> None:
    torch.manual_seed(1)
    n = 20
    mask = torch.ones(500, n, dtype=torch.bool)
    times = time_indices(mask, noise=0.1)  # (500, n)
    assert bool((times[:, :-1] > times[:, 1:]).all())  # oldest largest, strictly
    assert int(times.min()) >= 0 and int(times.max()) <= n - 1 + math.ceil(0.1 * n)
    gaps = times[:, 0] - (n - 1)  # how many empty memories were mixed in
    assert set(gaps.tolist()) == {0, 1, 2}  # b uniform in 0..ceil(0.1 n) = 0..2


def network(**options: object) -> MemoryNetwork:
    torch.manual_seed(0)
    return MemoryNetwork(12, 8, 3, 10, **options)  # type: ignore[arg-type]


def test_shapes_and_attention_over_real_memories_only() -> None:
    model = network().eval()
    story = torch.tensor([[[3, 4, 0], [5, 6, 7], [0, 0, 0]], [[8, 0, 0], [0, 0, 0], [0, 0, 0]]])
    question = torch.tensor([[3, 9], [4, 0]])
    logits, attention = model(story, question)
    assert logits.shape == (2, 12) and attention.shape == (2, 3, 3)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3))
    assert attention[0, :, 2].abs().sum() == 0 and attention[1, :, 1:].abs().sum() == 0
    assert logits[:, 0].isneginf().all()  # padding is never an answer
    # more padding (memories and words) changes nothing
    padded = torch.zeros(2, 5, 6, dtype=torch.long)
    padded[:, :3, :3] = story
    more_logits, more_attention = model(padded, torch.cat([question, torch.zeros(2, 2)], 1).long())
    torch.testing.assert_close(more_logits, logits)
    torch.testing.assert_close(more_attention[:, :, :3], attention)


def test_adjacent_tying_shares_tables_between_hops() -> None:
    model = network(tying="adjacent")
    assert model.embeddings.shape == (4, 12, 8)  # K + 1 tables
    assert model.a_tables == [0, 1, 2] and model.c_tables == [1, 2, 3]
    assert (model.b_table, model.w_table) == (0, 3)  # B = A^1, W^T = C^K
    story = torch.tensor([[[3, 4], [5, 6]]])
    question = torch.tensor([[3, 5]])
    logits, _ = model.eval()(story, question)
    # the answer layer is C^K: scaling table 3 scales every logit's answer term
    with torch.no_grad():
        model.embeddings[3].mul_(2.0)
    again, _ = model(story, question)
    assert not torch.allclose(again[:, 1:], logits[:, 1:])


def test_layerwise_tying_and_linear_start() -> None:
    model = network(tying="layerwise")
    assert model.a_tables == [1, 1, 1] and model.c_tables == [2, 2, 2] and model.H is not None
    story = torch.tensor([[[3, 4], [5, 6], [7, 0]]])
    question = torch.tensor([[3, 5]])
    model.eval()
    model.softmax.fill_(False)
    _, attention = model(story, question)
    # without the softmax the first hop's weights are the raw scores u^T m_i
    vectors, _ = model.memories(story)
    u = model.question(question)
    scores = (vectors[0, :, 0] @ u[0]).detach()
    torch.testing.assert_close(attention[0, 0], scores)
    assert not torch.allclose(attention[0, 0].sum(), torch.tensor(1.0))


def test_temporal_encoding_tells_order_apart() -> None:
    story = torch.tensor([[[3, 4], [5, 6]]])
    swapped = story.flip(1)
    question = torch.tensor([[3, 5]])
    with_time = network(temporal=True).eval()
    without = network(temporal=False).eval()
    a, _ = without(story, question)
    b, _ = without(swapped, question)
    torch.testing.assert_close(a, b)  # a bag of sentences: order does not matter
    c, _ = with_time(story, question)
    d, _ = with_time(swapped, question)
    assert not torch.allclose(c[:, 1:], d[:, 1:])


def test_code_position_encoding_matches_the_matlab_formula() -> None:
    # the authors' code: 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J), one J for all sentences
    torch.manual_seed(0)
    d, n, J = 4, 1, 6
    weights = code_position_encoding(J, 3, d)
    assert weights[0, 0].item() == pytest.approx(1 + 4 * (1 - 2.5) * (1 - 3.5) / (d * J))
    table = torch.randn(9, n * d)
    ids = torch.tensor([[3, 5, 7], [2, 0, 0]])
    got = encode_sentences(ids, table, d, "position_code", J)
    expected = (table[ids] * weights * (ids != 0).unsqueeze(-1)).sum(1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_empty_slots_score_zero_in_the_softmax() -> None:
    # S = 10 slots, n real memories: p_i = exp(s_i) / (sum_j exp(s_j) + S - n)
    model = network(empty_slots=True).eval()
    scores = torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    p = model.attend(scores, mask)
    expected0 = scores[0].exp() / (scores[0].exp().sum() + 7)
    torch.testing.assert_close(p[0], expected0)
    torch.testing.assert_close(p[1, 0], torch.tensor(0.3).exp() / (torch.tensor(0.3).exp() + 9))
    assert p[1, 1:].abs().sum() == 0
    full = torch.ones(1, 10, dtype=torch.bool)  # no empty slot: the plain softmax
    torch.testing.assert_close(model.attend(torch.zeros(1, 10), full), torch.full((1, 10), 0.1))
    # the padded batch still equals its stories one at a time
    story = torch.tensor([[[3, 4], [5, 6]], [[7, 0], [0, 0]]])
    question = torch.tensor([[3, 5], [4, 0]])
    logits, attention = model(story, question)
    alone, alone_attention = model(story[1:, :1], question[1:, :1])
    torch.testing.assert_close(logits[1:], alone)
    torch.testing.assert_close(attention[1:, :, :1], alone_attention)

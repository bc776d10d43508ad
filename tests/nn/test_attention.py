"""Attention scores, masks and multi-head attention against torch.nn.MultiheadAttention."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from seqlab.nn.attention import (
    SCORES,
    AdditiveScore,
    Attention,
    GeneralScore,
    MultiHeadAttention,
    masked_softmax,
)

B, Q, K, D = 3, 4, 6, 8


def lengths_mask(lengths: list[int], width: int) -> Tensor:
    """(B, width) bool, True at the first lengths[b] positions."""
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def test_masked_softmax_zeroes_masked_keys_and_fully_masked_rows() -> None:
    scores = torch.randn(2, 3, 5, requires_grad=True)
    mask = torch.tensor([[True, True, False, True, False], [False] * 5])
    weights = masked_softmax(scores, mask[:, None, :])
    expected = torch.softmax(scores[0][:, [0, 1, 3]], dim=-1)
    torch.testing.assert_close(weights[0][:, [0, 1, 3]], expected)
    assert weights[0][:, [2, 4]].abs().sum() == 0
    assert weights[1].abs().sum() == 0  # no real key: zeros, not NaN
    weights.sum().backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()
    with pytest.raises(ValueError, match="bool"):
        masked_softmax(scores, mask.float())


@pytest.mark.parametrize("name", sorted(SCORES))
def test_attention_ignores_padded_keys(name: str) -> None:
    torch.manual_seed(0)
    attention = Attention(name, D, D, hidden_size=5)
    query, keys, values = torch.randn(B, Q, D), torch.randn(B, K, D), torch.randn(B, K, 7)
    mask = lengths_mask([6, 3, 1], K)
    context, weights = attention(query, keys, values, mask)
    assert context.shape == (B, Q, 7) and weights.shape == (B, Q, K)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, Q))
    assert weights.masked_select(~mask[:, None, :]).abs().sum() == 0
    # changing what sits at padded positions changes nothing
    noise = torch.randn(B, K, D) * 100 * (~mask)[..., None]
    context2, weights2 = attention(query, keys + noise, values + 50 * (~mask)[..., None], mask)
    torch.testing.assert_close(context2, context)
    torch.testing.assert_close(weights2, weights)
    # a padded batch equals one sequence at a time
    single, _ = attention(query[1:2], keys[1:2, :3], values[1:2, :3])
    torch.testing.assert_close(context[1:2], single)
    # values default to keys
    torch.testing.assert_close(
        attention(query, keys, None, mask)[0], attention(query, keys, keys, mask)[0]
    )


def test_scores_follow_their_equations() -> None:
    torch.manual_seed(1)
    q, k = torch.randn(1, 1, D), torch.randn(1, 1, D)
    dot = Attention("dot", D, D).score(q, k)
    torch.testing.assert_close(dot[0, 0, 0], (q * k).sum())
    scaled = Attention("scaled_dot", D, D).score(q, k)
    torch.testing.assert_close(scaled[0, 0, 0], (q * k).sum() / math.sqrt(D))
    general = GeneralScore(D, 5)
    k5 = torch.randn(1, 1, 5)
    torch.testing.assert_close(general(q, k5)[0, 0, 0], q[0, 0] @ general.weight @ k5[0, 0])
    additive = AdditiveScore(D, 5, 3)
    expected = additive.v.weight[0] @ torch.tanh(
        additive.query_proj.weight @ q[0, 0]
        + additive.key_proj.weight @ k5[0, 0]
        + additive.key_proj.bias
    )
    torch.testing.assert_close(additive(q, k5)[0, 0, 0], expected)


@pytest.mark.parametrize("name", ["general", "additive"])
def test_precomputed_keys_give_the_same_scores(name: str) -> None:
    torch.manual_seed(2)
    attention = Attention(name, D, 5, hidden_size=4)
    query, keys = torch.randn(B, 1, D), torch.randn(B, K, 5)
    projected = attention.project_keys(keys)
    assert projected is not None
    torch.testing.assert_close(
        attention(query, keys, projected_keys=projected)[0], attention(query, keys)[0]
    )


def test_bad_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown attention score 'cosine'"):
        Attention("cosine", D, D)
    with pytest.raises(ValueError, match="query_size == key_size"):
        Attention("dot", D, 5)


def twin_mha(
    embed: int = 16, heads: int = 4, **kw: int
) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    ours = MultiHeadAttention(embed, heads, **kw)  # type: ignore[arg-type]
    theirs = nn.MultiheadAttention(embed, heads, batch_first=True, **kw)  # type: ignore[arg-type]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize("fused", [False, True])
def test_multihead_equals_torch_with_padding_mask(fused: bool) -> None:
    torch.manual_seed(3)
    ours, theirs = twin_mha()
    ours.fused = fused
    query, key = torch.randn(B, Q, 16), torch.randn(B, K, 16)
    mask = lengths_mask([6, 2, 4], K)
    out, weights = ours(query, key, key, mask, need_weights=not fused)
    ref, ref_weights = theirs(query, key, key, key_padding_mask=~mask, average_attn_weights=False)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    if not fused:
        assert weights is not None
        torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_multihead_equals_torch_causal_self_attention(fused: bool) -> None:
    torch.manual_seed(4)
    ours, theirs = twin_mha()
    ours.fused = fused
    x = torch.randn(B, K, 16)
    mask = lengths_mask([6, 5, 3], K)
    future = torch.ones(K, K, dtype=torch.bool).triu(1)  # torch: True = not allowed
    for key_mask in (None, mask):
        out, _ = ours(x, x, x, key_mask, causal=True)
        ref, _ = theirs(
            x, x, x, key_padding_mask=None if key_mask is None else ~key_mask, attn_mask=future
        )
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # causal: the first t outputs depend only on the first t inputs
    out, _ = ours(x, x, x, causal=True)
    short, _ = ours(x[:, :3], x[:, :3], x[:, :3], causal=True)
    torch.testing.assert_close(out[:, :3], short, atol=1e-5, rtol=1e-5)


def test_multihead_with_other_key_and_value_sizes_equals_torch() -> None:
    torch.manual_seed(5)
    ours, theirs = twin_mha(kdim=10, vdim=6)
    query, key, value = torch.randn(B, Q, 16), torch.randn(B, K, 10), torch.randn(B, K, 6)
    mask = lengths_mask([1, 6, 3], K)
    for fused in (False, True):
        ours.fused = fused
        out, _ = ours(query, key, value, mask)
        ref, _ = theirs(query, key, value, key_padding_mask=~mask)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_fused_equals_explicit_and_gradients_flow() -> None:
    torch.manual_seed(6)
    explicit = MultiHeadAttention(16, 4, fused=False)
    fused = MultiHeadAttention(16, 4, fused=True)
    fused.load_state_dict(explicit.state_dict())
    query, key = torch.randn(B, Q, 16), torch.randn(B, K, 16)
    mask = lengths_mask([6, 0, 3], K)  # the second sequence has no real key at all
    outs, grads = [], []
    for module in (explicit, fused):
        q = query.clone().requires_grad_()
        out, _ = module(q, key, key, mask)
        out.square().sum().backward()
        outs.append(out)
        grads.append((q.grad, {n: p.grad for n, p in module.named_parameters()}))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(outs[1]).all()
    # no real key: zero context, so the output is out_proj's bias
    torch.testing.assert_close(outs[1][1], explicit.out_proj.bias.expand(Q, 16))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    for name, grad in grads[0][1].items():
        assert grad is not None and grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, grads[1][1][name], atol=1e-5, rtol=1e-5)


def test_multihead_ignores_padded_keys() -> None:
    torch.manual_seed(7)
    mha = MultiHeadAttention(16, 2)
    query, key = torch.randn(B, Q, 16), torch.randn(B, K, 16)
    mask = lengths_mask([2, 6, 5], K)
    out, _ = mha(query, key, key, mask)
    changed = key + 30 * torch.randn(B, K, 16) * (~mask)[..., None]
    torch.testing.assert_close(mha(query, changed, changed, mask)[0], out, atol=1e-6, rtol=1e-5)


def test_multihead_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, 4)
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="bool"):
        mha(x, x, x, torch.ones(2, 3))
    with pytest.raises(ValueError, match="causal"):
        mha(x, torch.randn(2, 4, 8), torch.randn(2, 4, 8), causal=True)

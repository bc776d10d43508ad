"""Transformer layers against torch.nn's given the same weights; positions; causal steps."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.nn.transformer import (
    POSITIONS,
    LearnedPositions,
    SinusoidalPositions,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    causal_mask,
    sinusoidal_positions,
)

B, T, S, E, H, FF = 3, 5, 7, 16, 4, 32


def lengths_mask(lengths: list[int], width: int) -> Tensor:
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_equals_torch(norm_first: bool, activation: str) -> None:
    torch.manual_seed(0)
    ours = TransformerEncoderLayer(E, H, FF, 0.1, activation, norm_first=norm_first)
    theirs = nn.TransformerEncoderLayer(
        E, H, FF, 0.1, activation, batch_first=True, norm_first=norm_first
    )
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    ours.eval()
    theirs.eval()
    x = torch.randn(B, T, E)
    mask = lengths_mask([5, 3, 4], T)
    for fused in (False, True):
        ours.self_attn.fused = fused
        with torch.no_grad():
            out = ours(x, mask)
            # torch's eval fast path returns zeros at padded query rows; compare real rows
            ref = theirs(x, src_key_padding_mask=~mask)
            torch.testing.assert_close(out[mask], ref[mask], atol=1e-5, rtol=1e-5)
            causal = ours(x, causal=True)
            ref_causal = theirs(x, src_mask=~causal_mask(T), is_causal=True)
            torch.testing.assert_close(causal, ref_causal, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradients_equal_torch_in_training_mode(norm_first: bool) -> None:
    torch.manual_seed(1)
    ours = TransformerEncoderLayer(E, H, FF, 0.0, norm_first=norm_first)
    theirs = nn.TransformerEncoderLayer(E, H, FF, 0.0, batch_first=True, norm_first=norm_first)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(B, T, E)
    mask = lengths_mask([5, 2, 4], T)
    ours(x, mask)[mask].square().sum().backward()
    theirs(x, src_key_padding_mask=~mask)[mask].square().sum().backward()
    mine = dict(ours.named_parameters())
    for name, param in theirs.named_parameters():
        assert mine[name].grad is not None and param.grad is not None
        torch.testing.assert_close(mine[name].grad, param.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torch(norm_first: bool) -> None:
    torch.manual_seed(2)
    ours = TransformerDecoderLayer(E, H, FF, 0.1, norm_first=norm_first)
    theirs = nn.TransformerDecoderLayer(E, H, FF, 0.1, batch_first=True, norm_first=norm_first)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    ours.eval()
    theirs.eval()
    x, memory = torch.randn(B, T, E), torch.randn(B, S, E)
    mask, memory_mask = lengths_mask([5, 4, 2], T), lengths_mask([7, 3, 5], S)
    with torch.no_grad():
        out = ours(x, memory, mask, memory_mask)
        ref = theirs(
            x,
            memory,
            tgt_mask=~causal_mask(T),
            tgt_key_padding_mask=~mask,
            memory_key_padding_mask=~memory_mask,
            tgt_is_causal=True,
        )
    torch.testing.assert_close(out[mask], ref[mask], atol=1e-5, rtol=1e-5)
    # padded memory positions change nothing
    noisy = memory + 40 * torch.randn(B, S, E) * (~memory_mask)[..., None]
    with torch.no_grad():
        torch.testing.assert_close(ours(x, noisy, mask, memory_mask), out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_steps_equal_the_full_pass(norm_first: bool) -> None:
    torch.manual_seed(3)
    encoder = TransformerEncoder(2, E, H, FF, 0.0, norm_first=norm_first).eval()
    decoder = TransformerDecoder(2, E, H, FF, 0.0, norm_first=norm_first).eval()
    x, memory = torch.randn(B, T, E), torch.randn(B, S, E)
    memory_mask = lengths_mask([7, 3, 5], S)
    with torch.no_grad():
        full_enc = encoder(x, causal=True)
        full_dec = decoder(x, memory, memory_mask=memory_mask)
        # the prompt (first 2 positions) at once, then one position at a time
        enc_out, enc_caches = encoder.forward_cached(x[:, :2], causal=True)
        dec_out, dec_caches = decoder.forward_cached(x[:, :2], memory, None, memory_mask)
        enc_steps, dec_steps = [enc_out], [dec_out]
        for t in range(2, T):
            out, enc_caches = encoder.forward_cached(x[:, t : t + 1], caches=enc_caches)
            enc_steps.append(out)
            out, dec_caches = decoder.forward_cached(
                x[:, t : t + 1], memory, None, memory_mask, dec_caches
            )
            dec_steps.append(out)
    torch.testing.assert_close(torch.cat(enc_steps, 1), full_enc, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat(dec_steps, 1), full_dec, atol=1e-5, rtol=1e-5)
    keys, values = enc_caches[0]  # every position's projected keys and values
    assert keys.shape == values.shape == (B, H, T, E // H)


def test_steps_reading_the_memory_projected_once_equal_the_full_pass() -> None:
    torch.manual_seed(5)
    decoder = TransformerDecoder(2, E, H, FF, 0.0, norm_first=True).eval()
    x, memory = torch.randn(B, T, E), torch.randn(B, S, E)
    memory_mask = lengths_mask([7, 3, 5], S)
    with torch.no_grad():
        full, _, full_weights = decoder.forward_weights(
            x, memory, None, memory_mask, need_weights=True
        )
        projected = decoder.project_memory(memory)
        assert projected[0][0].shape == (B, H, S, E // H)
        caches = None
        steps, weights = [], []
        for t in range(T):
            out, caches, w = decoder.forward_weights(
                x[:, t : t + 1], memory, None, memory_mask, caches, True, projected
            )
            steps.append(out)
            weights.append(w)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert full_weights is not None
    torch.testing.assert_close(torch.cat(weights, 2), full_weights, atol=1e-5, rtol=1e-5)


def test_stacks_equal_torch_stacks() -> None:
    torch.manual_seed(4)
    ours = TransformerEncoder(2, E, H, FF, 0.0, norm_first=True).eval()
    layer = nn.TransformerEncoderLayer(E, H, FF, 0.0, batch_first=True, norm_first=True)
    theirs = nn.TransformerEncoder(
        layer, 2, norm=nn.LayerNorm(E), enable_nested_tensor=False
    ).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(B, T, E)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    post = TransformerEncoder(2, E, H, FF, 0.0, norm_first=False)
    assert post.norm is None  # the post-norm stack already ends in a LayerNorm


def test_sinusoidal_positions_follow_the_formula() -> None:
    codes = sinusoidal_positions(50, 8)
    for pos in (0, 7, 49):
        for i in range(4):
            angle = pos / 10000 ** (2 * i / 8)
            assert codes[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert codes[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    table = SinusoidalPositions(50, 8)
    torch.testing.assert_close(table(3, offset=7), codes[7:10])
    assert not list(table.parameters())
    learned = LearnedPositions(50, 8)
    assert learned(4, offset=2).shape == (4, 8) and set(POSITIONS) == {"sinusoidal", "learned"}
    with pytest.raises(ValueError, match="longer than max_length=50"):
        learned(49, offset=2)
    with pytest.raises(ValueError, match="even size"):
        sinusoidal_positions(4, 7)


def test_label_smoothing_is_the_mixture_with_the_uniform() -> None:
    # loss = (1 - eps) * NLL(target) + eps * mean_k(-log p_k): what our LM loss uses
    logits, targets, eps = torch.randn(6, 9), torch.randint(0, 9, (6,)), 0.1
    log_probs = logits.log_softmax(-1)
    expected = (
        (1 - eps) * -log_probs.gather(1, targets[:, None]).squeeze(1) - eps * log_probs.mean(-1)
    ).mean()
    torch.testing.assert_close(F.cross_entropy(logits, targets, label_smoothing=eps), expected)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        TransformerEncoderLayer(E, H, FF, activation="tanh")
    layer = TransformerEncoderLayer(E, H, FF)
    with pytest.raises(ValueError, match="one position at a time"):
        layer.forward_cached(torch.randn(1, 2, E), cache=torch.randn(1, 3, E))

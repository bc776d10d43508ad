"""Text-CNN blocks: output lengths, padding invariance, separable conv, max-norm."""

from __future__ import annotations

import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.nn.conv import (
    MaskedConv1d,
    apply_max_norm,
    masked_max_over_time,
    masked_mean_over_time,
)


@pytest.mark.parametrize("padding", ["valid", "same", "full"])
@pytest.mark.parametrize(("stride", "dilation", "separable"), [(1, 1, False), (2, 2, True)])
def test_batch_equals_singles(padding: str, stride: int, dilation: int, separable: bool) -> None:
    torch.manual_seed(0)
    conv = MaskedConv1d(4, 5, 3, stride, dilation, padding, separable)  # type: ignore[arg-type]
    lengths = torch.tensor([9, 4, 1])
    inputs = torch.randn(3, 4, 9)
    mask = torch.arange(9)[None, :] < lengths[:, None]
    out, out_mask = conv(inputs, mask)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_mask = conv(inputs[b : b + 1, :, :n], mask[b : b + 1, :n])
        steps = int(alone_mask.sum())
        assert int(out_mask[b].sum()) == steps
        torch.testing.assert_close(out[b, :, :steps], alone[0, :, :steps], atol=1e-5, rtol=1e-5)
        pooled = masked_max_over_time(out[b : b + 1], out_mask[b : b + 1])
        torch.testing.assert_close(pooled, masked_max_over_time(alone, alone_mask))


def test_output_lengths() -> None:
    lengths = torch.tensor([10, 3, 1])
    assert MaskedConv1d(1, 1, 3).output_lengths(lengths).tolist() == [8, 1, 1]
    assert MaskedConv1d(1, 1, 3, stride=2).output_lengths(lengths).tolist() == [4, 1, 1]
    assert MaskedConv1d(1, 1, 3, dilation=2).output_lengths(lengths).tolist() == [6, 1, 1]
    assert MaskedConv1d(1, 1, 3, stride=3, padding="same").output_lengths(lengths).tolist() == [
        4,
        1,
        1,
    ]


def test_full_padding_is_the_wide_convolution() -> None:
    lengths = torch.tensor([10, 3, 1])
    assert MaskedConv1d(1, 1, 3, padding="full").output_lengths(lengths).tolist() == [12, 5, 3]
    assert MaskedConv1d(1, 1, 3, 2, padding="full").output_lengths(lengths).tolist() == [6, 3, 2]
    conv = MaskedConv1d(1, 1, 3, padding="full")
    with torch.no_grad():
        conv.conv.weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]]]))
        conv.conv.bias.zero_()
    out, mask = conv(torch.tensor([[[5.0, 0.0]]]), torch.tensor([[True, False]]))
    # a one-word input meets every filter tap (Kalchbrenner et al., 2014; Kim, 2014)
    assert out[0, 0, mask[0]].tolist() == [15.0, 10.0, 5.0]


def test_separable_has_fewer_weights() -> None:
    full = sum(p.numel() for p in MaskedConv1d(64, 64, 5).parameters())
    separable = sum(p.numel() for p in MaskedConv1d(64, 64, 5, separable=True).parameters())
    assert separable == 64 * 5 + 64 + 64 * 64 + 64
    assert separable < full // 3


def test_mean_pool_and_max_norm() -> None:
    features = torch.tensor([[[1.0, 3.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert float(masked_mean_over_time(features, mask)) == 2.0
    weight = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    apply_max_norm(weight, 3.0)
    assert weight.norm(dim=1).tolist() == pytest.approx([3.0, 0.5])


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="padding"):
        MaskedConv1d(1, 1, 3, padding="circular")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=">= 1"):
        MaskedConv1d(1, 1, 0)

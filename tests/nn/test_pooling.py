"""Masked pooling: padding never changes the pooled vector."""

from __future__ import annotations

import pytest
import torch

from seqlab.nn.pooling import AttentionPooling, last_state, max_pool, mean_pool


def test_pools_ignore_padding() -> None:
    torch.manual_seed(0)
    values = torch.randn(2, 4, 6)
    lengths = torch.tensor([4, 2])
    mask = torch.arange(4)[None, :] < lengths[:, None]
    padded = values.clone()
    padded[1, 2:] = 100.0  # garbage at padded steps
    attention = AttentionPooling(6, 5)
    for pool in (mean_pool, max_pool, attention):
        torch.testing.assert_close(pool(padded, mask)[1], pool(values[1:2, :2], mask[1:2, :2])[0])
    torch.testing.assert_close(mean_pool(values, mask)[1], values[1, :2].mean(0))
    torch.testing.assert_close(max_pool(values, mask)[0], values[0].max(0).values)


def test_attention_weights_sum_to_one_and_zero_at_padding() -> None:
    pool = AttentionPooling(3, 4)
    mask = torch.tensor([[True, True, False]])
    weights = pool.weights(torch.randn(1, 3, 3), mask).detach()
    assert float(weights[0, 2]) == 0.0
    assert float(weights.sum()) == pytest.approx(1.0)


def test_last_state_takes_true_length_and_backward_first_step() -> None:
    output = torch.arange(2 * 3 * 4, dtype=torch.float).view(2, 3, 4)
    lengths = torch.tensor([3, 2])
    assert last_state(output, lengths).tolist() == [output[0, 2].tolist(), output[1, 1].tolist()]
    both = last_state(output, lengths, bidirectional=True)
    assert both[1].tolist() == output[1, 1, :2].tolist() + output[1, 0, 2:].tolist()

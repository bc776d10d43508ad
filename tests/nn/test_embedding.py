from __future__ import annotations

import pytest
import torch

from seqlab.nn.embedding import Embedding, one_hot


def test_one_hot_rows_have_a_single_one() -> None:
    ids = torch.tensor([[0, 3], [2, 2]])
    encoded = one_hot(ids, 4)
    assert encoded.shape == (2, 2, 4)
    assert encoded.dtype == torch.float32
    assert torch.equal(encoded.sum(-1), torch.ones(2, 2))
    assert torch.equal(encoded.argmax(-1), ids)


def test_one_hot_times_weight_equals_lookup() -> None:
    torch.manual_seed(0)
    embedding = Embedding(7, 5)
    ids = torch.tensor([[1, 6, 0], [3, 3, 2]])  # (B, T)
    looked_up = embedding(ids)  # (B, T, E)
    product = one_hot(ids, 7) @ embedding.weight  # (B, T, V) @ (V, E)
    assert looked_up.shape == (2, 3, 5)
    assert torch.equal(looked_up, product)
    assert torch.equal(embedding.one_hot_forward(ids), looked_up)


def test_one_hot_and_lookup_give_the_same_gradient() -> None:
    torch.manual_seed(0)
    embedding = Embedding(6, 4)
    ids = torch.tensor([0, 2, 2, 5])
    upstream = torch.randn(4, 4)
    (embedding(ids) * upstream).sum().backward()
    lookup_grad = embedding.weight.grad.clone()  # type: ignore[union-attr]
    embedding.weight.grad = None
    (embedding.one_hot_forward(ids) * upstream).sum().backward()
    assert torch.allclose(embedding.weight.grad, lookup_grad)  # type: ignore[arg-type]
    assert torch.equal(lookup_grad[1], torch.zeros(4))  # unused rows get no gradient
    assert torch.allclose(lookup_grad[2], upstream[1] + upstream[2])


def test_one_hot_rejects_bad_ids() -> None:
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot(torch.tensor([0, 3]), 3)
    with pytest.raises(TypeError, match="integer"):
        one_hot(torch.tensor([0.0, 1.0]), 3)

"""The distillation loss of Hinton et al. (2015)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from seqlab.nn.distill import UNLABELLED, distillation_loss, soften

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, -0.3], [-1.0, 3.0, 0.0]])
LABELS = torch.tensor([0, 2, 1])


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_t1_with_hard_teacher_targets_is_cross_entropy(alpha: float) -> None:
    one_hot = F.one_hot(LABELS, 3).float()
    loss = distillation_loss(LOGITS, one_hot, LABELS, temperature=1.0, alpha=alpha)
    torch.testing.assert_close(loss, F.cross_entropy(LOGITS, LABELS))


def test_soft_term_is_t_squared_kl_at_temperature() -> None:
    teacher = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0], [0.5, 0.5, 0.5]])
    temperature = 3.0
    p = soften(teacher, temperature)
    q = F.log_softmax(LOGITS / temperature, -1)
    kl = F.kl_div(q, p, reduction="batchmean")
    loss = distillation_loss(LOGITS, p, LABELS, temperature, alpha=1.0)
    torch.testing.assert_close(loss, temperature**2 * kl)
    mixed = distillation_loss(LOGITS, p, LABELS, temperature, alpha=0.25)
    torch.testing.assert_close(mixed, 0.25 * loss + 0.75 * F.cross_entropy(LOGITS, LABELS))


def test_unlabelled_examples_give_only_the_soft_term() -> None:
    p = soften(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)), 2.0)
    labels = torch.tensor([0, UNLABELLED, 1])
    loss = distillation_loss(LOGITS, p, labels, 2.0, alpha=0.5)
    per_soft = [
        distillation_loss(LOGITS[i : i + 1], p[i : i + 1], labels[i : i + 1], 2.0, 1.0)
        for i in range(3)
    ]
    ce = F.cross_entropy(LOGITS[[0, 2]], labels[[0, 2]], reduction="sum")
    expected = (0.5 * sum(per_soft) + 0.5 * ce) / 3
    torch.testing.assert_close(loss, expected)

"""Knowledge distillation (Hinton, Vinyals & Dean, 2015): a student matches a teacher's
softened class distribution as well as the labels.

.. code-block:: text

    p_T = softmax(z_teacher / T)        q_T = softmax(z_student / T)         (B, K)
    L = mean_i [ alpha * T^2 * KL(p_T,i || q_T,i) + (1 - alpha) * CE(softmax(z_student,i), y_i) ]

``T^2`` keeps the soft term's gradient at the same scale as T changes (its gradient
shrinks as 1/T^2). Examples without a label (``y = -1``, unlabelled text) contribute
only the soft term. With T = 1 and one-hot teacher targets the soft term equals the
cross-entropy, so any alpha gives plain cross-entropy.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

UNLABELLED = -1
"""The label of an example that only has the teacher's soft target."""


def soften(logits: Tensor, temperature: float) -> Tensor:
    """softmax(logits / T): (B, K) -> (B, K)."""
    return F.softmax(logits / temperature, dim=-1)


def distillation_loss(
    student_logits: Tensor,
    teacher_probs: Tensor,
    labels: Tensor,
    temperature: float,
    alpha: float,
) -> Tensor:
    """The mean over the batch of Hinton et al.'s loss.

    ``student_logits`` (B, K); ``teacher_probs`` (B, K) = softmax(teacher logits / T),
    rows summing to 1; ``labels`` (B,) class ids, ``UNLABELLED`` where there is none.
    """
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # (B, K)
    # KL(p || q) = sum_k p_k (log p_k - log q_k); xlogy gives 0 where p_k = 0
    kl = (torch.xlogy(teacher_probs, teacher_probs) - teacher_probs * log_q).sum(-1)  # (B,)
    labelled = (labels != UNLABELLED).to(student_logits.dtype)  # (B,)
    hard = F.cross_entropy(student_logits, labels.clamp(min=0), reduction="none")  # (B,)
    per_example = alpha * temperature**2 * kl + (1.0 - alpha) * labelled * hard  # (B,)
    return per_example.mean()

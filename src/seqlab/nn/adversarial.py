"""Adversarial and virtual adversarial training on word embeddings (Miyato, Dai &
Goodfellow, 2017, "Adversarial Training Methods for Semi-Supervised Text Classification").

.. code-block:: text

    s = the word embeddings of a sentence (T, E); r is zero at padding positions
    AT:   g = grad_s L(s; theta^)          r_adv = epsilon * g / ||g||_2
          L_adv = L(s + r_adv; theta)
    VAT:  d = a random direction, ||d||_2 = 1
          g = grad_r KL(p(.|s; theta^) || p(.|s + r; theta^)) at r = xi * d   (power iteration)
          r_vadv = epsilon * g / ||g||_2
          L_vadv = KL(p(.|s; theta^) || p(.|s + r_vadv; theta))
    objective = L(s; theta) + weight * (L_adv or L_vadv)

theta^ is the current weights taken as constants: the perturbation is not differentiated
through. ``||.||_2`` is one norm per sentence, over all its words and dimensions. VAT needs
no label, so it applies to unlabelled sentences as well (the classify task's
``data.unlabelled``).

What differs from the paper: the embeddings are perturbed as the model has them; the paper
first normalises them (``(v - E[v]) / sqrt(Var[v])`` with word-frequency weights), so that
the embeddings cannot grow to make a fixed epsilon negligible. Here epsilon is in the units of
the model's own embeddings and is chosen on dev.

A model opts in by following :class:`seqlab.contract.EmbeddingPerturbable`
(``embed``, ``logits_from_embeddings``, ``loss_from_logits``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from seqlab.config import AdversarialConfig
from seqlab.contract import EmbeddingPerturbable, LossOutput


def unit_directions(direction: Tensor, mask: Tensor) -> Tensor:
    """``direction`` (B, T, E) set to zero where ``mask`` (B, T) is False (padding) and
    scaled to L2 norm 1 per example (over T and E); an all-zero example stays zero.

    Divided by its largest absolute value first, so that tiny gradients do not underflow
    when squared."""
    direction = direction * mask.unsqueeze(-1).to(direction.dtype)
    largest = direction.flatten(1).abs().amax(dim=1).clamp_min(1e-12)  # (B,)
    direction = direction / largest.view(-1, 1, 1)
    norm = direction.flatten(1).norm(dim=1).clamp_min(1e-12)  # (B,)
    return direction / norm.view(-1, 1, 1)


def kl_divergence(target_logits: Tensor, logits: Tensor) -> Tensor:
    """Mean over rows of KL(softmax(target_logits) || softmax(logits)): (B, K), (B, K) -> ()."""
    log_p = F.log_softmax(target_logits, dim=-1)
    log_q = F.log_softmax(logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def at_perturbation(loss: Tensor, embedded: Tensor, mask: Tensor, epsilon: float) -> Tensor:
    """``epsilon * g / ||g||_2`` per example, g = d loss / d embedded (B, T, E), as a
    constant (the graph of ``loss`` is kept for the backward of the objective)."""
    (grad,) = torch.autograd.grad(loss, embedded, retain_graph=True)
    return epsilon * unit_directions(grad.detach(), mask)


def vat_perturbation(
    forward: Callable[[Tensor], Tensor],
    embedded: Tensor,
    logits: Tensor,
    mask: Tensor,
    epsilon: float,
    xi: float,
    iterations: int,
) -> Tensor:
    """The virtual adversarial perturbation (B, T, E) of norm ``epsilon`` per example:
    ``iterations`` power iterations from a random direction (torch's global generator) on
    the KL divergence between ``logits`` (B, K), the clean predictions, and
    ``forward(embedded + r)``; a constant."""
    embedded = embedded.detach()
    target = logits.detach()
    direction = unit_directions(torch.randn_like(embedded), mask)
    for _ in range(iterations):
        r = (xi * direction).requires_grad_()
        (grad,) = torch.autograd.grad(kl_divergence(target, forward(embedded + r)), r)
        direction = unit_directions(grad, mask)
    return epsilon * direction


def adversarial_objective(
    model: EmbeddingPerturbable, batch: Any, cfg: AdversarialConfig
) -> tuple[LossOutput, Tensor]:
    """(the model's clean loss, the objective ``clean + weight * adversarial term``).

    One clean forward gives both the loss and the gradient the perturbation follows; the
    adversarial forward reuses the embeddings, so the weights (embeddings included) get
    the adversarial term's gradient too.
    """
    embedded, mask = model.embed(batch)  # (B, T, E), (B, T)
    if not embedded.requires_grad:  # frozen embeddings (static vectors) are perturbed too
        embedded = embedded.detach().requires_grad_()
    logits = model.logits_from_embeddings(batch, embedded)
    clean = model.loss_from_logits(batch, logits)
    if cfg.kind == "at":
        r = at_perturbation(clean.loss, embedded, mask, cfg.epsilon)
        adversarial = model.loss_from_logits(
            batch, model.logits_from_embeddings(batch, embedded + r)
        ).loss
    else:
        r = vat_perturbation(
            lambda moved: model.logits_from_embeddings(batch, moved),
            embedded,
            logits,
            mask,
            cfg.epsilon,
            cfg.xi,
            cfg.power_iterations,
        )
        adversarial = kl_divergence(
            logits.detach(), model.logits_from_embeddings(batch, embedded + r)
        )
    return clean, clean.loss + cfg.weight * adversarial

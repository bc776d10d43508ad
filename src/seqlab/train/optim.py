"""Optimizers and L1/L2 penalties, built from ``OptimConfig`` (schedules: ``schedules.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from seqlab.config import OptimConfig


def build_optimizer(params: Any, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum / Nesterov), AdaGrad, Adadelta, RMSProp, Adam or AdamW.

    L2 is handled by :func:`penalty` as ``l2/2 * ||w||^2`` on the loss for every optimizer
    except AdamW, where ``l2`` is the decoupled weight decay (Loshchilov & Hutter).
    """
    params = [p for p in params if p.requires_grad]
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, eps=cfg.eps)
    if cfg.name == "adadelta":  # lr scales Zeiler's update; 1.0 is the paper's rule
        return torch.optim.Adadelta(params, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum
        )
    # Adam's fused kernel does the same update as the default multi-tensor one in a single
    # pass over memory: about 3x faster on CPU, which is 5-10% of a small model's step.
    fused = bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=fused)
    return torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.l2, fused=fused
    )


def penalty(model: nn.Module, cfg: OptimConfig) -> torch.Tensor | None:
    """``l1 * sum|w| + l2/2 * sum w^2`` over weight matrices (biases and norms excluded)."""
    l2 = 0.0 if cfg.name == "adamw" else cfg.l2
    if cfg.l1 == 0.0 and l2 == 0.0:
        return None
    total: torch.Tensor | None = None
    for name, param in model.named_parameters():
        if not param.requires_grad or param.dim() < 2 or name.endswith("bias"):
            continue
        term = cfg.l1 * param.abs().sum() + 0.5 * l2 * param.pow(2).sum()
        total = term if total is None else total + term
    return total

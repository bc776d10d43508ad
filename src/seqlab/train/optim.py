"""Optimizers, their parameter groups, freezing, and L1/L2 penalties, built from
``OptimConfig`` (schedules: ``schedules.py``).

**Layer groups.** :func:`layer_groups` cuts any model's parameters into groups, input
first: one per top-level module in the order the model registers them, and one per layer
of a recurrent stack that is a top-level module (its ``*_l{k}`` parameters: ``rnn.l0``,
``rnn.l1``). For the RNN classifier: ``embedding``, ``rnn.l0``, ..., ``out``. Fine-tuning
(Howard & Ruder, 2018, ULMFiT) acts on these groups:

* discriminative learning rates (``optim.layer_lr_decay`` = d): group g at depth k from the
  top (the output layer has k = 0) learns at ``lr / d^k``, one optimizer parameter group
  each, so every schedule scales them together;
* freezing (``optim.freeze``: group names or their prefixes, ``rnn`` = every ``rnn.l*``):
  frozen for the whole run, or for the first ``optim.freeze_epochs`` epochs;
* gradual unfreezing (``optim.gradual_unfreeze``): in epoch e (from 0) only the top e + 1
  groups train.

A frozen parameter has ``requires_grad`` off, so it gets no gradient, no optimizer update
(its optimizer state waits) and no L1/L2 penalty; :class:`Freezer` sets it at each epoch's
start from the epoch alone, so a resumed run freezes as an uninterrupted one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from seqlab.config import OptimConfig
from seqlab.errors import ConfigError

_LAYER = re.compile(r"_l(\d+)(_reverse)?$")

LayerGroups = list[tuple[str, list[nn.Parameter]]]


def group_name(parameter_name: str) -> str:
    """The layer group of a parameter: its top-level module, or ``rnn.l{k}`` for layer k
    of a recurrent stack that is a top-level module."""
    parts = parameter_name.split(".")
    layer = _LAYER.search(parts[-1]) if len(parts) == 2 else None
    return f"{parts[0]}.l{layer.group(1)}" if layer else parts[0]


def layer_groups(model: nn.Module) -> LayerGroups:
    """``[(name, parameters), ...]`` input first (see the module docstring); shared
    (tied) parameters count once, in the group where they first appear."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        groups.setdefault(group_name(name), []).append(param)
    return list(groups.items())


def _selected(groups: LayerGroups, names: Iterable[str], key: str) -> set[str]:
    """The group names that ``names`` pick (a name or a prefix ending before a dot)."""
    picked = set()
    for wanted in names:
        hits = {g for g, _ in groups if g == wanted or g.startswith(f"{wanted}.")}
        if not hits:
            known = ", ".join(g for g, _ in groups)
            raise ConfigError(f"{key}: {wanted!r} names no layer group; the model has {known}")
        picked |= hits
    return picked


def _named_values(
    groups: LayerGroups, pairs: Iterable[tuple[str, float]], key: str
) -> dict[str, float]:
    """``{group name: value}`` for ``[[name or prefix, value], ...]`` (``optim.l2_groups``,
    ``optim.sgd_groups``); a later pair overrides an earlier one for the groups both pick."""
    values: dict[str, float] = {}
    for wanted, value in pairs:
        values |= dict.fromkeys(_selected(groups, [wanted], key), value)
    return values


PLAIN_SGD = "plain_sgd"
"""The mark of a parameter group that :func:`build_optimizer`'s optimizer updates by plain
SGD, ``w -= lr * grad``, whatever ``optim.name`` is."""


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one of every parameter at ``optim.lr``, or with
    ``optim.layer_lr_decay`` one per layer group at ``lr / decay^depth``; the layer groups
    that ``optim.sgd_groups`` names get their own lr and the mark ``plain_sgd``."""
    if cfg.layer_lr_decay == 1.0 and not cfg.sgd_groups:
        return [{"params": list(model.parameters())}]
    groups = layer_groups(model)
    sgd = _named_values(groups, cfg.sgd_groups, "optim.sgd_groups")
    top = len(groups) - 1
    return [
        {"params": params, "lr": sgd[name], "name": name, PLAIN_SGD: True}
        if name in sgd
        else {"params": params, "lr": cfg.lr / cfg.layer_lr_decay ** (top - i), "name": name}
        for i, (name, params) in enumerate(groups)
    ]


def _with_plain_sgd_groups(base: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """``base``, except that the parameter groups marked :data:`PLAIN_SGD` take a plain
    SGD step and no state: Tai et al.'s Tree-LSTM trains its word vectors so, beside
    Adagrad for the rest. The other groups step exactly as under ``base``."""

    class WithPlainSGDGroups(base):  # type: ignore[valid-type, misc]
        @torch.no_grad()
        def step(self, closure: Any = None, **kwargs: Any) -> Any:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            every: list[dict[str, Any]] = self.param_groups  # type: ignore[has-type]
            for group in every:
                if group.get(PLAIN_SGD):
                    for param in group["params"]:
                        if param.grad is not None:
                            param.add_(param.grad, alpha=-group["lr"])
            self.param_groups = [g for g in every if not g.get(PLAIN_SGD)]
            try:
                super().step(**kwargs)  # e.g. a GradScaler's arguments to a fused step
            finally:
                self.param_groups = every
            return loss

    WithPlainSGDGroups.__name__ = WithPlainSGDGroups.__qualname__ = f"{base.__name__}PlainSGD"
    return WithPlainSGDGroups


class Freezer:
    """Sets ``requires_grad`` of ``model``'s layer groups for each epoch from
    ``optim.freeze``, ``optim.freeze_epochs`` and ``optim.gradual_unfreeze``. Parameters
    that were frozen when it was made (a CNN's static embedding) stay frozen."""

    def __init__(self, model: nn.Module, cfg: OptimConfig) -> None:
        self.groups = [(n, [p for p in ps if p.requires_grad]) for n, ps in layer_groups(model)]
        self.frozen = _selected(self.groups, cfg.freeze, "optim.freeze")
        self.until = cfg.freeze_epochs
        self.gradual = cfg.gradual_unfreeze

    @property
    def active(self) -> bool:
        return bool(self.frozen) or self.gradual

    @property
    def changes(self) -> bool:
        """Whether some parameters are unfrozen during training."""
        return self.gradual or (bool(self.frozen) and self.until is not None)

    def trainable(self, epoch: int) -> list[str]:
        """The layer groups that train in ``epoch`` (from 0), input first."""
        top = len(self.groups) - 1
        names = []
        for i, (name, _) in enumerate(self.groups):
            held = name in self.frozen and (self.until is None or epoch < self.until)
            if not held and not (self.gradual and top - i > epoch):
                names.append(name)
        return names

    def apply(self, epoch: int) -> None:
        trainable = set(self.trainable(epoch))
        for name, params in self.groups:
            for param in params:
                param.requires_grad_(name in trainable)


def build_optimizer(params: Any, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum / Nesterov), AdaGrad, Adadelta, RMSProp, Adam or AdamW over
    ``params``: parameters, or parameter groups (dicts, :func:`param_groups`).

    Parameters frozen now (``requires_grad`` off) are left out. L2 is handled by
    :func:`penalty` as ``l2/2 * ||w||^2`` on the loss for every optimizer except AdamW,
    where ``l2`` is the decoupled weight decay (Loshchilov & Hutter).
    """
    params = list(params)
    if params and isinstance(params[0], dict):
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
        params = [g for g in groups if g["params"]]
        tensors = [p for g in params for p in g["params"]]
    else:
        params = tensors = [p for p in params if p.requires_grad]
    mixed = any(isinstance(g, dict) and g.get(PLAIN_SGD) for g in params)

    def kind(base: type[torch.optim.Optimizer]) -> Any:
        return _with_plain_sgd_groups(base) if mixed else base

    if cfg.name == "sgd":
        return kind(torch.optim.SGD)(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
    if cfg.name == "adagrad":
        return kind(torch.optim.Adagrad)(params, lr=cfg.lr, eps=cfg.eps)
    if cfg.name == "adadelta":  # lr scales Zeiler's update; 1.0 is the paper's rule
        return kind(torch.optim.Adadelta)(params, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)
    if cfg.name == "rmsprop":
        return kind(torch.optim.RMSprop)(
            params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum
        )
    # Adam's fused kernel does the same update as the default multi-tensor one in a single
    # pass over memory: about 3x faster on CPU, which is 5-10% of a small model's step.
    fused = bool(tensors) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors
    )
    if cfg.name == "adam":
        return kind(torch.optim.Adam)(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=fused)
    return kind(torch.optim.AdamW)(
        params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.l2, fused=fused
    )


def l2_weights(model: nn.Module, cfg: OptimConfig) -> dict[str, float]:
    """The L2 weight of each of ``model``'s layer groups: ``optim.l2``, or the value that
    ``optim.l2_groups`` gives the group (ConfigError for a name that picks no group)."""
    groups = layer_groups(model)
    weights = {name: cfg.l2 for name, _ in groups}
    return weights | _named_values(groups, cfg.l2_groups, "optim.l2_groups")


def penalty(
    model: nn.Module, cfg: OptimConfig, l2: dict[str, float] | None = None
) -> torch.Tensor | None:
    """``l1 * sum|w| + l2/2 * sum w^2`` over weight matrices (biases and norms excluded),
    ``l2`` per layer group: ``l2`` as :func:`l2_weights` returns it (the trainer computes it
    once), or computed here when not given."""
    if cfg.name == "adamw":  # AdamW's weight decay is decoupled, not on the loss
        weights: dict[str, float] = {}
    else:
        weights = l2_weights(model, cfg) if l2 is None else l2
    if cfg.l1 == 0.0 and not any(weights.values()):
        return None
    total: torch.Tensor | None = None
    for name, param in model.named_parameters():
        if not param.requires_grad or param.dim() < 2 or name.endswith("bias"):
            continue
        weight = weights.get(group_name(name), 0.0)
        if cfg.l1 == 0.0 and weight == 0.0:
            continue
        term = cfg.l1 * param.abs().sum() + 0.5 * weight * param.pow(2).sum()
        total = term if total is None else total + term
    return total

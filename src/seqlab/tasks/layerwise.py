"""Greedy layer-wise pretraining of a deep encoder, one Trainer fit per layer.

For each layer l = 1..L in turn, an autoencoder around that layer's encoder (the stack's
``layer_autoencoder(l - 1)``) is trained on the codes h_{l-1} of the layers below (h_0 =
x), with the same Trainer as every model: Adam at ``lr`` for ``epochs`` passes (or
``trainer.max_steps`` steps), batches of ``trainer.batch_size`` in an order fixed by
``(trainer.seed, l, epoch)``. The layer's run dir is ``RUN_DIR/pretrain/layer{l}/``
(checkpoint, metrics.jsonl with ``val_error`` after every epoch), so an interrupted
pretraining continues exactly with ``resume``. Each layer keeps its final weights;
``val_error`` only reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig
from seqlab.nn.autoencoder import Autoencoder
from seqlab.rundir import RunDir
from seqlab.train.trainer import Trainer

CHUNK = 1024


class LayerwiseStack(Protocol):
    """A deep encoder that can be pretrained layer by layer
    (:class:`~seqlab.nn.autoencoder.StackedAutoencoder`)."""

    encoders: nn.ModuleList

    def layer_autoencoder(self, index: int) -> Autoencoder: ...


@dataclass(frozen=True)
class LayerReport:
    """Mean reconstruction error of one layer's autoencoder on its training codes."""

    before: float
    after: float


def layer_config(cfg: ExperimentConfig, epochs: int, lr: float) -> ExperimentConfig:
    """The Trainer settings of one layer: Adam at ``lr`` (no penalty, constant rate),
    ``epochs`` epochs, ``val_error`` after each, one step per batch; batch size, seed,
    device, precision, ``max_steps``, threads and logging as ``cfg.trainer``; no
    clipping, accumulation, averaging or early stopping."""
    trainer = dataclasses.replace(
        cfg.trainer,
        epochs=epochs,
        max_minutes=None,
        clip_norm=None,
        clip_value=None,
        eval_every=0,
        early_stopping=0,
        ema_decay=0.0,
        accumulate=1,
    )
    return cfg.replace(
        optim=OptimConfig(name="adam", lr=lr),
        trainer=trainer,
        eval=EvalConfig(metric="val_error", mode="min"),
    )


def shuffled_batches(
    codes: Tensor, batch_size: int, seed: int, layer: int, epoch: int
) -> list[Tensor]:
    """``codes`` (N, K) in (B, K) batches, shuffled by ``(seed, layer, epoch)``."""
    order = torch.from_numpy(np.random.default_rng([seed, layer, epoch]).permutation(len(codes)))
    return [codes[order[s : s + batch_size]] for s in range(0, len(codes), batch_size)]


def mean_error(ae: Autoencoder, codes: Tensor) -> float:
    """Mean per-example reconstruction error of ``ae`` on the clean ``codes`` (N, K)."""
    was_training = ae.training
    ae.eval()
    with torch.no_grad():
        total = sum(
            float(ae.reconstruction_error(codes[s : s + CHUNK]).sum())
            for s in range(0, len(codes), CHUNK)
        )
    ae.train(was_training)
    return total / max(len(codes), 1)


def encode(ae: Autoencoder, codes: Tensor) -> Tensor:
    """(N, K_{l-1}) -> (N, K_l) the codes of ``ae``'s encoder."""
    with torch.no_grad():
        return torch.cat([ae.encode(codes[s : s + CHUNK]) for s in range(0, len(codes), CHUNK)])


def pretrain_layerwise(
    stack: LayerwiseStack,
    cfg: ExperimentConfig,
    inputs: Tensor,
    val_inputs: Tensor,
    run_dir: Path,
    *,
    epochs: int,
    lr: float,
    resume: bool = False,
    console: Console | None = None,
) -> list[LayerReport]:
    """Pretrain every layer of ``stack`` in turn on ``inputs`` (N, D) (``val_inputs``
    (M, D) only report ``val_error``), in ``run_dir/pretrain/layer{l}``. With ``resume``
    each layer continues from its checkpoint where there is one; a finished layer is only
    reloaded. Returns each layer's mean reconstruction error on its training codes before
    and after its training."""
    stage_cfg = layer_config(cfg, epochs, lr)
    device = next(stack.encoders.parameters()).device
    codes, val_codes = inputs.float().to(device), val_inputs.float().to(device)
    reports = []
    for index in range(len(stack.encoders)):
        ae = stack.layer_autoencoder(index)
        before = mean_error(ae, codes)
        files = RunDir(run_dir).pretrain_layer(index + 1)
        trainer = Trainer(
            ae, stage_cfg, files.path, evaluate=_val_error(val_codes), console=console
        )
        batches = _batches(codes, stage_cfg.trainer.batch_size, stage_cfg.trainer.seed, index + 1)
        if resume and files.checkpoint.exists():
            # A finished layer is only reloaded, never trained further (not even when
            # trainer.max_steps grows): the layers above learnt from its codes.
            trainer.load()
            if not trainer.state.done:
                trainer.fit(batches, resume=True)
        else:
            trainer.fit(batches)
        reports.append(LayerReport(before, mean_error(ae, codes)))
        codes, val_codes = encode(ae, codes), encode(ae, val_codes)
    return reports


def _val_error(val_codes: Tensor) -> Callable[[nn.Module], dict[str, float]]:
    def evaluate(ae: nn.Module) -> dict[str, float]:
        assert isinstance(ae, Autoencoder)
        return {"val_error": mean_error(ae, val_codes)}

    return evaluate


def _batches(
    codes: Tensor, batch_size: int, seed: int, layer: int
) -> Callable[[int], list[Tensor]]:
    return lambda epoch: shuffled_batches(codes, batch_size, seed, layer, epoch)

"""Greedy layer-wise pretraining through the Trainer: each layer learns, the stack keeps
it, each layer has its own run dir, and a finished layer is never trained further."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.nn.autoencoder import StackedAutoencoder
from seqlab.rundir import RunDir
from seqlab.tasks.layerwise import LayerReport, layer_config, mean_error, pretrain_layerwise
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.trainer import seed_everything

D = 12


def binary_inputs(n: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=generator) < 0.4).float()


def make_cfg(**trainer: object) -> ExperimentConfig:
    return ExperimentConfig(
        task="ae_bow",
        data=None,
        model=None,
        optim=OptimConfig(name="sgd", lr=5.0, l2=0.1),  # the fine-tuning's, not pretraining's
        trainer=TrainerConfig(**({"batch_size": 16, "progress": False, "seed": 3} | trainer)),
        eval=EvalConfig(metric="heldout_acc", mode="max"),
    )


def pretrain(
    run_dir: Path, cfg: ExperimentConfig, resume: bool = False
) -> tuple[StackedAutoencoder, list[LayerReport]]:
    seed_everything(0)
    stack = StackedAutoencoder(D, [8, 6, 4], num_classes=2, activation="sigmoid", loss="bce")
    x, val = binary_inputs(64, seed=2), binary_inputs(16, seed=5)
    reports = pretrain_layerwise(stack, cfg, x, val, run_dir, epochs=30, lr=1e-2, resume=resume)
    return stack, reports


def test_each_layer_learns_in_its_own_run_dir_and_the_stack_keeps_it(tmp_path: Path) -> None:
    stack, reports = pretrain(tmp_path, make_cfg())
    assert len(reports) == 3
    for report in reports:
        assert report.after < 0.9 * report.before, reports
    x = binary_inputs(64, seed=2)
    for layer in (1, 2, 3):
        files = RunDir(tmp_path).pretrain_layer(layer)
        assert files.path == tmp_path / "pretrain" / f"layer{layer}"
        history = [json.loads(line) for line in files.metrics_log.read_text().splitlines()]
        assert [h["epoch"] for h in history] == list(range(1, 31))  # val_error every epoch
        assert history[-1]["step"] == 30 * 4 and history[-1]["val_error"] > 0
        # The stack holds the layer's final weights (not the best val_error's).
        saved = load_checkpoint(files.checkpoint, map_location="cpu")["model"]
        assert torch.equal(saved["encoder.weight"], stack.encoders[layer - 1].weight)
        # The reported error is the layer autoencoder's on the codes of the layers below.
        ae = stack.layer_autoencoder(layer - 1)
        ae.load_state_dict(saved)
        codes = stack.encode(x, depth=layer - 1).detach()
        assert mean_error(ae, codes) == reports[layer - 1].after


def test_pretraining_uses_adam_at_its_own_lr_and_epochs_not_the_fine_tunings() -> None:
    cfg = make_cfg(
        epochs=99, clip_norm=1.0, early_stopping=2, ema_decay=0.9, max_steps=7, accumulate=4
    )
    stage = layer_config(cfg, epochs=10, lr=1e-3)
    assert stage.optim == OptimConfig(name="adam", lr=1e-3)
    assert (stage.trainer.epochs, stage.trainer.max_steps, stage.trainer.batch_size) == (10, 7, 16)
    trainer = stage.trainer
    assert (trainer.clip_norm, trainer.early_stopping, trainer.ema_decay, trainer.accumulate) == (
        None,
        0,
        0.0,
        1,
    )
    assert stage.eval.metric == "val_error" and stage.eval.mode == "min"


def test_a_finished_layer_is_not_trained_further_on_resume(tmp_path: Path) -> None:
    short, short_reports = pretrain(tmp_path / "run", make_cfg(max_steps=5))
    # Resuming with more steps allowed: the finished layers stay as they were (the layers
    # above learnt from their codes), so the stack is the same.
    again, reports = pretrain(tmp_path / "run", make_cfg(), resume=True)
    for a, b in zip(short.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert reports == short_reports
    steps = load_checkpoint(RunDir(tmp_path / "run").pretrain_layer(3).checkpoint)
    assert steps["state"]["step"] == 5

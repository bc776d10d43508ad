"""`seqlab plot RUN_DIR --kind gradient-flow [--fresh]`: ||dL/dh_t|| of a run's model.

The loss is the cross-entropy of the last step of one validation window, so the gradient
enters at t = T-1 and the heatmap shows how much of it reaches each earlier step and
layer: an Elman RNN's fades within a few steps, an LSTM's survives. ``--fresh`` draws the
same for a newly initialised model of the run's config (before any training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from seqlab.analysis.gradient_flow import gradient_flow, plot_gradient_flow
from seqlab.errors import ConfigError
from seqlab.runs import load_run_config
from seqlab.tasks import TASKS
from seqlab.train.trainer import seed_everything


def plot_run_gradient_flow(
    run_dir: Path, out: Path, fresh: bool = False, steps: int | None = None
) -> Path:
    cfg = load_run_config(run_dir)
    if cfg.task != "lm_rnn":
        raise ConfigError(f"gradient-flow plots need an lm_rnn run, {run_dir} is {cfg.task!r}")
    task = TASKS.get(cfg.task)
    model, data = task.load_trained(cfg, run_dir, None)
    if fresh:
        seed_everything(cfg.trainer.seed)
        model = task.build_model(cfg, data)
    model.eval()
    length = steps or max(cfg.data.bptt, 50)
    split = "val" if "val" in data.splits else "test"
    ids: Any = data.splits[split][: length + 1].unsqueeze(0)  # (1, T+1)
    if ids.size(1) < 2:
        raise ConfigError(f"{split} split is too short for a gradient-flow plot")

    def loss() -> torch.Tensor:
        logits, _ = model(ids[:, :-1])
        return F.cross_entropy(logits[:, -1], ids[:, -1])

    matrices = gradient_flow(model, loss)
    label = "fresh" if fresh else "trained"
    named = {f"{cfg.model.cell} {label}: {name}": m for name, m in matrices.items()}
    return plot_gradient_flow(named, out, title=f"{run_dir}: ||dL/dh_t||, loss at t = T-1")

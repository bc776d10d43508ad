"""Teachers for knowledge distillation: finished classifier runs whose softened class
distributions a student learns from (``data.teachers`` of the ``classify`` task; the
loss is in ``seqlab.nn.distill``).

Each teacher reads the raw tokens with its own vocabulary, so teacher and student may
differ in model, vocabulary and tokens kept; they must have the same label set. An
ensemble's targets are the mean of its members' softened distributions.

A teacher's logits over a training set are kept in memory (the last few teacher x token
sets, keyed by the run dir, its best weights' modification time and the tokens), so a
search over T and alpha or a run of several seeds in one process runs each teacher once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqlab.config import ExperimentConfig
from seqlab.contract import move_to
from seqlab.errors import ConfigError
from seqlab.nn.distill import soften
from seqlab.rundir import RunDir
from seqlab.tasks.base import finished_run_config, load_labels
from seqlab.train.device import module_device


@functools.lru_cache(maxsize=4)
def _teacher_logits(
    task: Any, run_dir: str, weights_mtime_ns: int, tokens: tuple[tuple[str, ...], ...], device: str
) -> Tensor:
    """The logits of the teacher in ``run_dir`` for every example of ``tokens``: (N, K) on
    the CPU; ``weights_mtime_ns`` is part of the cache key only (a retrained teacher)."""
    cfg = finished_run_config(task, Path(run_dir), "data.teachers", device)
    model, data = task.load_trained(cfg, Path(run_dir))
    logits = []
    size = cfg.data.eval_batch_size
    with torch.no_grad():
        for start in range(0, len(tokens), size):
            chunk = tokens[start : start + size]
            batch = task.make_batch(cfg, data, chunk, [0] * len(chunk))
            logits.append(model.logits(move_to(batch, module_device(model))).float().cpu())
    return torch.cat(logits)


def check_teachers(
    task: Any, teachers: Sequence[str], labels: Sequence[str], device: str
) -> list[ExperimentConfig]:
    """The config of each teacher, a finished run of ``task`` with the student's label set
    (a ConfigError naming the teacher otherwise); cheap, nothing is loaded but configs."""
    configs = []
    for teacher in teachers:
        run_dir = Path(teacher)
        configs.append(finished_run_config(task, run_dir, "data.teachers", device))
        teacher_labels = load_labels(run_dir, task.name)
        if list(teacher_labels) != list(labels):
            raise ConfigError(
                f"data.teachers: {teacher} has labels {teacher_labels}, the student {list(labels)}"
            )
    return configs


def teacher_probs(
    task: Any,
    teachers: Sequence[str],
    tokens: Sequence[Sequence[str]],
    labels: Sequence[str],
    temperature: float,
    device: str,
) -> Tensor:
    """softmax(logits / T) of each teacher for every example of ``tokens``, averaged over
    the teachers: (N, K) on the CPU. ``labels`` is the student's label set."""
    configs = check_teachers(task, teachers, labels, device)
    key = tuple(tuple(t) for t in tokens)
    total: Tensor | None = None
    for teacher, cfg in zip(teachers, configs, strict=True):
        run_dir = Path(teacher)
        mtime = RunDir(run_dir).best_weights.stat().st_mtime_ns
        logits = _teacher_logits(task, str(run_dir.resolve()), mtime, key, cfg.trainer.device)
        probs = soften(logits, temperature)  # (N, K)
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(teachers)

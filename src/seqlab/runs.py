"""Run directories: create, refuse to clobber, resume, and train (with k-fold CV).

A run dir holds ``config.yaml``, ``metrics.jsonl`` (one line per evaluation),
``checkpoint.pt`` (the full training state), ``best.safetensors`` and ``metrics.json``
(the final numbers), ``run.json`` (provenance and status, see ``seqlab.provenance``),
and ``.lock`` (held by the process training into it, see ``seqlab.lock``). With
``eval.folds = k`` there is one such dir per fold, ``fold0 .. fold{k-1}``, and the top-level
``metrics.json`` (and ``run.json``) holds mean and std.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from seqlab.config import ExperimentConfig, read_yaml, save_config
from seqlab.errors import ConfigError, RunDirError, SeqlabError
from seqlab.io import atomic_write_text
from seqlab.loader import from_dict
from seqlab.lock import run_dir_lock
from seqlab.provenance import Invocation, Provenance
from seqlab.rundir import RunDir
from seqlab.tasks import TASKS
from seqlab.tasks.base import TrainedTask
from seqlab.train import distributed
from seqlab.train.device import check_device
from seqlab.train.trainer import Interrupted, Pruned

RESUMABLE = (
    "epochs",
    "max_steps",
    "max_minutes",
    "threads",
    "progress",
    "log_every",
    "tensorboard",
)


def holds_run(run_dir: Path) -> bool:
    return RunDir(run_dir).config.exists()


def load_run_config(run_dir: Path) -> ExperimentConfig:
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run dir")
    if not holds_run(run_dir):
        raise RunDirError(f"{run_dir}: not a run dir (no config.yaml); train into it first")
    return from_dict(read_yaml(RunDir(run_dir).config))


def prepare_run_dir(run_dir: Path, *, resume: bool, force: bool) -> bool:
    """Check ``run_dir`` can take this run; returns True if it was created now.

    An existing run is refused unless ``resume`` (continue it) or ``force`` (replace it).
    """
    if resume and force:
        raise ConfigError("--resume and --force exclude each other")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: exists and is not a directory")
    if resume:
        if not holds_run(run_dir):
            raise RunDirError(f"{run_dir}: nothing to resume (no config.yaml)")
        return False
    if holds_run(run_dir):
        if not force:
            raise RunDirError(
                f"{run_dir}: already holds a run; use --resume to continue it, --force to "
                "replace it, or --out to train elsewhere"
            )
        for entry in run_dir.iterdir():  # all but the lock, which this process holds
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry != RunDir(run_dir).lock:
                entry.unlink()
    created = not run_dir.exists() or all(p == RunDir(run_dir).lock for p in run_dir.iterdir())
    run_dir.mkdir(parents=True, exist_ok=True)
    return created


def train(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    force: bool = False,
    console: Console | None = None,
    invocation: Invocation | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir``; returns and writes the final metrics.

    ``run_dir`` is locked meanwhile: a second process training into it is refused.
    ``invocation`` (the command line, config file and overrides; default "python API")
    goes into ``run.json`` with the rest of the run's provenance.

    In a process group (torchrun, or :func:`train_worker` under ``--nproc``; joined here
    from the environment) rank 0 prepares the run dir and writes every file; the other
    processes train beside it and return ``{}``.
    """
    if resume and force:
        raise ConfigError("--resume and --force exclude each other")
    if not resume:  # a resumed run keeps its own device: checked in _resumed_config
        check_device(cfg.trainer.device)
    if distributed.requested_world() > 1:
        _check_distributed(cfg)
    joined = distributed.init_from_env(cfg.trainer.device)
    try:
        return _train(
            cfg, run_dir, resume=resume, force=force, console=console, invocation=invocation
        )
    finally:
        if joined:
            distributed.shutdown()


def _check_distributed(cfg: ExperimentConfig) -> None:
    """What a process group cannot train (checked in every process alike)."""
    task = TASKS.get(cfg.task)
    if not isinstance(task, TrainedTask):
        raise ConfigError(
            f"task {cfg.task!r} is fitted by its own algorithm, not by the Trainer; "
            "--nproc and torchrun train gradient-trained tasks only"
        )
    if type(task).fit is not TrainedTask.fit:  # its own stages (pretraining): one process
        raise ConfigError(
            f"task {cfg.task!r} trains in stages of its own (TrainedTask.fit overridden); "
            "train it in one process (drop --nproc)"
        )
    if cfg.eval.folds > 1:
        raise ConfigError("eval.folds > 1 (cross-validation) runs in one process; drop --nproc")


def train_worker(
    cfg: ExperimentConfig,
    run_dir: Path,
    resume: bool,
    force: bool,
    invocation: Invocation | None,
) -> None:
    """One process of ``seqlab train --nproc N`` (started by ``distributed.spawn``, which
    sets the environment torchrun would): train, print a user error as one line, exit with
    its code."""
    rank = int(os.environ.get("RANK", "0"))
    if cfg.trainer.threads == 0:  # the cores shared out, not each process taking them all
        world = distributed.requested_world()
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    try:
        train(
            cfg,
            run_dir,
            resume=resume,
            force=force,
            console=Console(stderr=True, quiet=rank != 0),
            invocation=invocation,
        )
    except Interrupted as stop:
        if rank == 0:
            sys.stderr.write(f"{stop}\n")
        sys.exit(130)
    except SeqlabError as err:
        where = "" if rank == 0 else f" (process {rank})"
        sys.stderr.write(f"error{where}: {err}\n")
        sys.exit(err.exit_code)


def _train(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool,
    force: bool,
    console: Console | None,
    invocation: Invocation | None,
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    ctx = distributed.context()
    with contextlib.ExitStack() as stack:

        def begin() -> tuple[ExperimentConfig, bool, Provenance | None]:
            stack.enter_context(run_dir_lock(run_dir))
            return _begin(cfg, run_dir, resume=resume, force=force, invocation=invocation)

        def follow() -> tuple[ExperimentConfig, bool, Provenance | None]:
            return (_resumed_config(run_dir, cfg, save=False) if resume else cfg), False, None

        cfg, created, provenance = distributed.main_first(ctx, begin, follow)
        if provenance is None:  # a process beside rank 0: trains, writes nothing
            _fit(cfg, run_dir, resume=resume, created=False, console=console)
            return {}
        return _finish(cfg, run_dir, provenance, resume=resume, created=created, console=console)


def _begin(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool,
    force: bool,
    invocation: Invocation | None,
) -> tuple[ExperimentConfig, bool, Provenance | None]:
    """Prepare the run dir, write the config and ``run.json``: (config, created, provenance)."""
    if resume:
        prepare_run_dir(run_dir, resume=True, force=False)
        cfg = _resumed_config(run_dir, cfg)
        created = False
    else:
        created = prepare_run_dir(run_dir, resume=False, force=force)
        save_config(cfg, RunDir(run_dir).config)
    provenance = Provenance(cfg, run_dir, invocation or Invocation(), resume=resume)
    provenance.write()
    return cfg, created, provenance


def _finish(
    cfg: ExperimentConfig,
    run_dir: Path,
    provenance: Provenance,
    *,
    resume: bool,
    created: bool,
    console: Console,
) -> dict[str, Any]:
    try:
        metrics = _fit(cfg, run_dir, resume=resume, created=created, console=console)
    except (Interrupted, KeyboardInterrupt):
        provenance.finish("interrupted")
        raise
    except Pruned:
        provenance.finish("pruned")
        raise
    except BaseException as err:
        provenance.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    atomic_write_text(RunDir(run_dir).metrics, json.dumps(metrics, indent=2) + "\n")
    provenance.finish("done", metrics)
    return metrics


def _fit(
    cfg: ExperimentConfig, run_dir: Path, *, resume: bool, created: bool, console: Console
) -> dict[str, Any]:
    task = TASKS.get(cfg.task)
    try:
        if cfg.eval.folds > 1:
            if not task.supports_folds:
                raise ConfigError(f"task {cfg.task!r} does not support eval.folds > 1")
            metrics = _cross_validate(cfg, run_dir, resume=resume, console=console)
        else:
            metrics = task.fit(
                cfg, run_dir, resume=resume and _has_checkpoint(run_dir), console=console
            )
    except SeqlabError:
        if created and not _has_checkpoint(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth keeping was made
        raise
    return metrics


def _has_checkpoint(run_dir: Path) -> bool:
    """Training began in ``run_dir``: it holds a checkpoint, its own or one of a stage
    trained before its own training (a stacked autoencoder's ``pretrain/layer{l}``)."""
    return any(run_dir.rglob(RunDir(run_dir).checkpoint.name))


def _resumed_config(
    run_dir: Path, requested: ExperimentConfig, save: bool = True
) -> ExperimentConfig:
    """The run's own config; only the trainer settings that do not change what is learned
    (``RESUMABLE``: how long, threads, logging) may differ from the saved ones."""
    saved = load_run_config(run_dir)
    changes = {
        key: getattr(requested.trainer, key)
        for key in RESUMABLE
        if getattr(requested.trainer, key) != getattr(saved.trainer, key)
    }
    trainer = dataclasses.replace(saved.trainer, **changes)
    try:
        check_device(trainer.device)
    except ConfigError as err:
        raise ConfigError(
            f"{RunDir(run_dir).config}: a run resumes on its own device: {err}"
        ) from err
    cfg = saved.replace(trainer=trainer)
    if save:
        save_config(cfg, RunDir(run_dir).config)
    return cfg


def _cross_validate(
    cfg: ExperimentConfig, run_dir: Path, *, resume: bool, console: Console
) -> dict[str, Any]:
    task = TASKS.get(cfg.task)
    per_fold: list[dict[str, float]] = []
    for fold in range(cfg.eval.folds):
        fold_dir = RunDir(run_dir).fold(fold).path
        done = RunDir(fold_dir).metrics
        if resume and done.exists():
            per_fold.append(json.loads(done.read_text(encoding="utf-8")))
            continue
        fold_dir.mkdir(parents=True, exist_ok=True)
        console.print(f"[bold]fold {fold + 1}/{cfg.eval.folds}[/bold]")
        metrics = task.fit(
            cfg,
            fold_dir,
            resume=resume and _has_checkpoint(fold_dir),
            fold=fold,
            console=console,
        )
        atomic_write_text(done, json.dumps(metrics, indent=2) + "\n")
        per_fold.append(metrics)
    return summarize_folds(per_fold)


def summarize_folds(per_fold: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and (sample) std over folds of every metric; ``test_acc`` is the CV mean."""
    result: dict[str, Any] = {"folds": len(per_fold)}
    for key in per_fold[0]:
        values = [float(m[key]) for m in per_fold]
        result[key] = statistics.fmean(values)
        result[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    result["per_fold"] = per_fold
    return result

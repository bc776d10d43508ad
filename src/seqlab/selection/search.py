"""``seqlab search CONFIG --space space.yaml --trials N``: hyper-parameter search on dev.

An Optuna study (grid, random or TPE sampler) stored in ``DIR/study.db`` (SQLite), so
running the same command again continues it (a trial cut off mid-run is tried again).
Each trial is one run dir, ``DIR/trial_NNN``, trained with ``eval.test: false``: the test
split is never evaluated. After each evaluation the Trainer's evaluation hook reports the
dev metric (``eval.metric``) to the study, which prunes a trial below the median of the
earlier trials at the same evaluation. Written at the end: ``DIR/trials.md`` and
``DIR/trials.json`` (every trial, best dev metric first) and ``DIR/best.yaml`` (the best
trial's config, test switched back on), to train and test once with ``seqlab train``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState
from rich.console import Console

from seqlab.config import apply_overrides, read_yaml
from seqlab.errors import ConfigError, SeqlabError
from seqlab.io import atomic_write_text
from seqlab.loader import from_dict
from seqlab.lock import run_dir_lock
from seqlab.provenance import Invocation
from seqlab.report import format_value
from seqlab.rundir import RunDir
from seqlab.runs import train
from seqlab.selection.space import Param, grid_space, override_text, read_space, set_key
from seqlab.shipped import resolve_config
from seqlab.train.trainer import Pruned, evaluation_hook

SAMPLERS = ("grid", "random", "tpe")
STUDY = "search"


@dataclass(frozen=True)
class SearchFiles:
    """The files of a search dir."""

    path: Path

    @property
    def study(self) -> Path:
        return self.path / "study.db"

    @property
    def table(self) -> Path:
        return self.path / "trials.md"

    @property
    def trials(self) -> Path:
        return self.path / "trials.json"

    @property
    def best(self) -> Path:
        return self.path / "best.yaml"

    def trial(self, number: int) -> Path:
        return self.path / f"trial_{number:03d}"


def trial_config(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The base config (a plain dict) with the trial's values and the test split off."""
    raw = apply_overrides(base, [])
    for key, value in params.items():
        set_key(raw, key, value)
    set_key(raw, "eval.test", False)
    return raw


def check_space(base: dict[str, Any], params: list[Param], space: Path) -> None:
    """Every searched key must exist in the config: build it with one value of each."""
    for param in params:
        try:
            from_dict(trial_config(base, {param.key: param.example()}))
        except ConfigError as err:
            raise ConfigError(f"{space}: {param.key}: {err}") from None


def make_sampler(name: str, params: list[Param], space: Path, seed: int) -> Any:
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(params, space), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r} (known: {', '.join(SAMPLERS)})")


def search(
    config: Path,
    space: Path,
    out: Path,
    *,
    trials: int | None = None,
    sampler: str = "tpe",
    sets: list[str] | None = None,
    seed: int = 1,
    prune: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run (or continue) the study until it holds ``trials`` finished trials (grid: every
    point of the grid when ``trials`` is None); returns the summary that is written."""
    console = console or Console(stderr=True)
    sets = list(sets or [])
    params = read_space(space)
    base = apply_overrides(read_yaml(resolve_config(config)), sets)
    check_space(base, params, space)
    cfg = from_dict(trial_config(base, {}))
    if trials is None:
        if sampler != "grid":
            raise ConfigError(f"give --trials N for the {sampler} sampler")
        trials = len(_grid_points(grid_space(params, space)))
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    out.mkdir(parents=True, exist_ok=True)
    files = SearchFiles(out)
    optuna.logging.set_verbosity(logging.WARNING)
    with run_dir_lock(out):
        study = optuna.create_study(
            study_name=STUDY,
            storage=f"sqlite:///{files.study}",
            load_if_exists=True,
            direction="maximize" if cfg.eval.mode == "max" else "minimize",
            sampler=make_sampler(sampler, params, space, seed),
            pruner=(
                optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
                if prune
                else optuna.pruners.NopPruner()
            ),
        )
        _retry_cut_off(study, console)
        objective = _objective(config, base, params, files, sets, console)
        while (left := trials - len(_finished(study))) > 0:
            before = len(study.trials)
            study.optimize(objective, n_trials=left, catch=(SeqlabError,))
            if len(study.trials) == before:
                break  # the grid is exhausted
        summary = summarize(study, cfg.eval.metric, cfg.eval.mode, files)
    return summary


def _grid_points(grid: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    points: list[tuple[Any, ...]] = [()]
    for values in grid.values():
        points = [(*p, v) for p in points for v in values]
    return points


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials that count: complete, pruned, or failed with an error (not those cut
    off by a stopped process, which are tried again)."""
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and "error" in t.user_attrs)
    ]


def _retry_cut_off(study: optuna.Study, console: Console) -> None:
    """Trials left running by a process that was stopped (the dir lock says no other
    process is searching here) are marked failed and queued again with their values."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params)
        console.print(f"trial {trial.number} was cut off; queued again with its values")


def _objective(
    config: Path,
    base: dict[str, Any],
    params: list[Param],
    files: SearchFiles,
    sets: list[str],
    console: Console,
) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        values = {p.key: p.suggest(trial) for p in params}
        cfg = from_dict(trial_config(base, values))
        run_dir = files.trial(trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        shown = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
        )
        console.print(f"[bold]trial {trial.number}[/bold]: {shown}", highlight=False)
        evaluations = 0

        def report(where: Path, record: dict[str, Any]) -> None:
            nonlocal evaluations
            if where != run_dir or cfg.eval.metric not in record:
                return  # a stage of the run (layer-wise pretraining), not the run itself
            evaluations += 1
            trial.report(float(record[cfg.eval.metric]), step=evaluations)
            if trial.should_prune():
                raise Pruned(f"pruned at evaluation {evaluations}")

        overrides = [*sets, *(override_text(k, v) for k, v in values.items()), "eval.test=false"]
        invocation = Invocation(list(sys.argv), str(config), overrides)
        try:
            with evaluation_hook(report):
                metrics = train(cfg, run_dir, force=True, console=console, invocation=invocation)
        except Pruned as stop:
            console.print(f"trial {trial.number}: {stop}")
            raise optuna.TrialPruned(str(stop)) from None
        except SeqlabError as err:
            console.print(f"trial {trial.number} failed: {err}", highlight=False)
            trial.set_user_attr("error", str(err))
            raise
        return float(metrics[cfg.eval.metric])

    return objective


def _trial_row(trial: optuna.trial.FrozenTrial, metric: str, mode: str) -> dict[str, Any]:
    run_dir = Path(trial.user_attrs.get("run_dir", ""))
    files = RunDir(run_dir)
    history = []
    if files.metrics_log.is_file():
        lines = files.metrics_log.read_text(encoding="utf-8").splitlines()
        history = [json.loads(line) for line in lines if line]
    values = [float(r[metric]) for r in history if metric in r]
    final: dict[str, Any] = {}
    if files.metrics.is_file():
        final = json.loads(files.metrics.read_text(encoding="utf-8"))
    best_seen = (max(values) if mode == "max" else min(values)) if values else None
    best_record: dict[str, Any] = next(
        (r for r in history if metric in r and float(r[metric]) == best_seen), {}
    )
    dev = {
        k: float(v)
        for k, v in (final or best_record).items()
        if k.startswith("val_") and isinstance(v, int | float)
    }
    return {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        "params": dict(trial.params),
        "value": trial.value if trial.value is not None else best_seen,
        "dev": dev,
        "train_loss": best_record.get("train_loss"),
        "evaluations": len(values),
        "steps": final.get("steps", history[-1]["step"] if history else None),
        "run_dir": str(run_dir),
        "error": trial.user_attrs.get("error"),
    }


def summarize(study: optuna.Study, metric: str, mode: str, files: SearchFiles) -> dict[str, Any]:
    """Write trials.json, trials.md and best.yaml; the summary (rows best first)."""
    rows = [_trial_row(t, metric, mode) for t in _finished(study)]
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (r["value"] is None, sign * (r["value"] or 0.0), r["trial"]))
    complete = [r for r in rows if r["state"] == "complete"]
    best = complete[0] if complete else None
    command = None
    if best is not None:
        best_config = read_yaml(RunDir(Path(best["run_dir"])).config)
        best_config.setdefault("eval", {})["test"] = True
        atomic_write_text(files.best, yaml.safe_dump(best_config, sort_keys=False))
        command = f"seqlab train {files.best} --seeds 1-3 --out {files.path / 'best'}"
    summary = {
        "metric": metric,
        "mode": mode,
        "trials": rows,
        "best": best,
        "best_config": str(files.best) if best else None,
        "test": "not computed",
        "next": command,
    }
    atomic_write_text(files.trials, json.dumps(summary, indent=2, default=float) + "\n")
    atomic_write_text(files.table, to_markdown(summary))
    return summary


def to_markdown(summary: dict[str, Any]) -> str:
    """Every trial, best dev metric first; the test split was not evaluated."""
    rows = summary["trials"]
    keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
    dev = list(dict.fromkeys(k for r in rows for k in r["dev"]))
    metric = summary["metric"]
    header = ["trial", "state", *keys, f"{metric} (best)", *[d for d in dev if d != metric]]
    header += ["evaluations"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(r["trial"]), r["state"]]
        cells += [_param_cell(r["params"].get(k)) for k in keys]
        cells += [_cell(r["value"])] + [_cell(r["dev"].get(d)) for d in dev if d != metric]
        cells += [str(r["evaluations"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Test not computed (every trial ran with eval.test=false).")
    if summary["next"]:
        lines.append(f"Train the best config and test it once with: `{summary['next']}`")
    return "\n".join(lines) + "\n"


def _param_cell(value: Any) -> str:
    """A searched value as given (``1e-05``, not rounded away)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format_value({"mean": value, "std": None})
    return str(value)

"""``seqlab report``: finished runs grouped into recipes, mean ± std over seeds.

Runs whose configs differ only in ``trainer.seed`` (and in settings that change no number,
``provenance.NOT_RECIPE``) are one recipe and one row: n, mean ± sample std of each
metric, the command that reproduces them, and the config's ``anchor`` when it names one.
Each run is read from ``config.yaml`` + ``metrics.json`` and, when present, ``run.json``
(runs trained before ``run.json`` existed are reported with ``provenance: missing``).
"""

from __future__ import annotations

import json
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.config import read_yaml
from seqlab.errors import RunDirError
from seqlab.provenance import PYTHON_API, read_provenance, recipe_hash
from seqlab.rundir import RunDir


@dataclass(frozen=True)
class RunRecord:
    """One finished run as the report sees it."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    provenance: dict[str, Any] | None

    @property
    def seed(self) -> int | None:
        seed = (self.config.get("trainer") or {}).get("seed")
        return int(seed) if isinstance(seed, int) else None


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """The run dirs among ``paths`` and below them (a run dir's own sub-dirs, its folds
    and pretraining stages, are part of it, not runs of their own)."""
    found: list[Path] = []

    def walk(folder: Path) -> None:
        if RunDir(folder).config.is_file():
            found.append(folder)
            return
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            walk(child)

    for path in paths:
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run dir or folder")
        before = len(found)
        walk(path)
        if len(found) == before:
            raise RunDirError(f"{path}: holds no run dir (no config.yaml in it or below it)")
    return list(dict.fromkeys(found))


def load_record(run_dir: Path) -> RunRecord | None:
    """The run in ``run_dir``, or None when it has no final metrics (running or failed)."""
    files = RunDir(run_dir)
    if not files.metrics.is_file():
        return None
    metrics = json.loads(files.metrics.read_text(encoding="utf-8"))
    return RunRecord(run_dir, read_yaml(files.config), metrics, read_provenance(run_dir))


def default_metrics(config: dict[str, Any]) -> list[str]:
    """The test counterpart of ``eval.metric`` (``val_acc`` -> ``test_acc``), then itself."""
    section = config.get("eval") or {}
    metric = str(section.get("metric", "val_loss"))
    split = str(section.get("split", "test"))
    if metric.startswith("val_"):
        return [f"{split}_{metric[len('val_') :]}", metric]
    return [metric]


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def _command(run: RunRecord, seeds: list[int]) -> tuple[str, list[str]]:
    """One line for the table and one full command per seed."""
    prov = run.provenance or {}
    config_path = prov.get("config_path") or str(RunDir(run.path).config)
    overrides = [o for o in prov.get("overrides") or [] if not o.startswith("trainer.seed=")]
    stem = Path(config_path).stem if prov.get("config_path") else run.path.name
    base = ["seqlab", "train", config_path]
    for override in overrides:
        base += ["--set", override]
    per_seed = [
        shlex.join([*base, "--set", f"trainer.seed={s}", "--out", f"runs/{stem}_s{s}"])
        for s in seeds
    ]
    line = shlex.join(base) + " --set trainer.seed=S --out runs/" + stem + "_sS"
    return f"{line}  # S in {' '.join(str(s) for s in seeds)}", per_seed


def _git_label(git: dict[str, Any]) -> str:
    return str(git.get("commit", "unknown"))[:10] + ("+dirty" if git.get("dirty") is True else "")


def _machine_label(prov: dict[str, Any]) -> str:
    """``AMD EPYC (2 cores, 1 thread), cpu, torch 2.13.0+cpu`` (the GPU's name on a GPU)."""
    machine = prov.get("machine") or {}
    threads = machine.get("torch_threads")
    where = machine.get("gpu") or machine.get("device", "?")
    torch_version = (prov.get("versions") or {}).get("torch", "?")
    return (
        f"{machine.get('cpu', '?')} ({machine.get('cores', '?')} cores, {threads} "
        f"thread{'s' if threads != 1 else ''}), {where}, torch {torch_version}"
    )


def _row(runs: list[RunRecord], wanted: list[str] | None) -> dict[str, Any]:
    first = runs[0]
    names = wanted or default_metrics(first.config)
    metrics = {}
    for name in names:
        values = [
            float(r.metrics[name]) for r in runs if isinstance(r.metrics.get(name), int | float)
        ]
        if values:
            metrics[name] = _stats(values)
    seeds = sorted({s for s in (r.seed for r in runs) if s is not None})
    command, commands = _command(next((r for r in runs if r.provenance), first), seeds)
    with_prov = [r.provenance for r in runs if r.provenance]
    provenance = (
        "ok"
        if len(with_prov) == len(runs)
        else "missing"
        if not with_prov
        else f"partial ({len(with_prov)} of {len(runs)} runs)"
    )
    config_path = next(
        (p["config_path"] for p in with_prov if p.get("config_path")),
        None,
    )
    model = (first.config.get("model") or {}).get("name")
    anchor = first.config.get("anchor")
    if isinstance(anchor, dict):
        anchor = dict(anchor)
        anchor["metric"] = anchor.get("metric") or default_metrics(first.config)[0]
    else:
        anchor = None
    return {
        "recipe": config_path or f"{first.config.get('task')}/{model} ({first.path})",
        "task": first.config.get("task"),
        "model": model,
        "recipe_hash": recipe_hash(first.config),
        "n": len(runs),
        "seeds": seeds,
        "metrics": metrics,
        "selection": {
            "metric": (first.config.get("eval") or {}).get("metric"),
            "mode": (first.config.get("eval") or {}).get("mode"),
        },
        "anchor": anchor,
        "command": command,
        "commands": commands,
        "provenance": provenance,
        "git": sorted({_git_label(p["git"]) for p in with_prov if isinstance(p.get("git"), dict)}),
        "machines": sorted({_machine_label(p) for p in with_prov}),
        "dates": sorted({str(p.get("end") or p.get("start") or "")[:10] for p in with_prov} - {""}),
        "python_api": any(p.get("command") == PYTHON_API for p in with_prov),
        "runs": [str(r.path) for r in runs],
    }


def build_report(paths: list[Path], metrics: list[str] | None = None) -> dict[str, Any]:
    """Group the finished runs in and below ``paths`` into recipes: ``{"rows": [...],
    "skipped": [...]}`` (skipped: run dirs without ``metrics.json``)."""
    groups: dict[str, list[RunRecord]] = {}
    skipped = []
    for run_dir in find_run_dirs(paths):
        record = load_record(run_dir)
        if record is None:
            status = (read_provenance(run_dir) or {}).get("status", "unfinished")
            skipped.append({"run": str(run_dir), "status": status})
            continue
        groups.setdefault(recipe_hash(record.config), []).append(record)
    rows = [_row(runs, metrics) for runs in groups.values()]
    return {"rows": rows, "skipped": skipped}


def format_value(stats: dict[str, Any]) -> str:
    mean, std = stats["mean"], stats["std"]
    digits = 4 if abs(mean) < 10 else 2
    text = f"{mean:.{digits}f}"
    return text if std is None else f"{text} ± {std:.{digits}f}"


def metric_names(report: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(name for row in report["rows"] for name in row["metrics"]))


def table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The header and cells shared by the markdown and the terminal table."""
    names = metric_names(report)
    header = ["recipe", "n", *names, "anchor", "command", "provenance"]
    cells = []
    for row in report["rows"]:
        anchor = row["anchor"]
        anchor_text = f"{anchor['value']} {anchor['metric']} ({anchor['source']})" if anchor else ""
        prov = "; ".join([", ".join(row["git"]), ", ".join(row["dates"]), *row["machines"]])
        if row["provenance"] != "ok":
            prov = f"provenance: {row['provenance']}" + (f"; {prov}" if row["git"] else "")
        cells.append(
            [
                row["recipe"],
                str(row["n"]),
                *(format_value(row["metrics"][m]) if m in row["metrics"] else "" for m in names),
                anchor_text,
                row["command"],
                prov,
            ]
        )
    return header, cells


def to_markdown(report: dict[str, Any]) -> str:
    """A table to paste into docs/RESULTS.md (mean ± sample std over seeds)."""
    header, cells = table_rows(report)

    def line(items: list[str]) -> str:
        escaped = [item.replace("|", "\\|") for item in items]
        return "| " + " | ".join(escaped) + " |"

    lines = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [
        line([c if i != header.index("command") else f"`{c}`" for i, c in enumerate(row)])
        for row in cells
    ]
    return "\n".join(lines) + "\n"

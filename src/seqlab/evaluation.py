"""Use a finished run: evaluate it, predict with it, generate from it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqlab.errors import DataError, RunDirError
from seqlab.runs import load_run_config, summarize_folds
from seqlab.tasks import TASKS


def evaluate_run(
    run_dir: Path, split: str = "test", data_path: str | None = None
) -> dict[str, Any]:
    """Metrics of the best weights on ``split`` (or on the file ``data_path``).

    A cross-validated run is evaluated fold by fold (each fold's own test part) and
    summarized by mean and std.
    """
    cfg = load_run_config(run_dir)
    task = TASKS.get(cfg.task)
    if cfg.eval.folds > 1 and data_path is None:
        per_fold = []
        for fold in range(cfg.eval.folds):
            fold_dir = run_dir / f"fold{fold}"
            model, data = task.load_trained(cfg, fold_dir, None, fold=fold)
            per_fold.append(_evaluate_split(task, cfg, model, data, split))
        result = summarize_folds(per_fold)
        result.pop("per_fold")
        return result
    model, data = task.load_trained(cfg, run_dir, data_path)
    if data_path is not None:
        split = "test" if "test" in task.splits(data) or split == "test" else split
    return _evaluate_split(task, cfg, model, data, split)


def _evaluate_split(task: Any, cfg: Any, model: Any, data: Any, split: str) -> dict[str, float]:
    available = task.splits(data)
    if split not in available and not (
        split == "test" and hasattr(data, "splits") and "test" in getattr(data, "splits", {})
    ):
        raise DataError(f"split {split!r} is not available (this run has {available})")
    result: dict[str, float] = task.evaluate(cfg, model, data, split)
    return result


def _single_run(run_dir: Path) -> tuple[Path, int | None]:
    """A cross-validated run predicts with its first fold's model."""
    cfg = load_run_config(run_dir)
    if cfg.eval.folds > 1:
        return run_dir / "fold0", 0
    return run_dir, None


def predict_lines(run_dir: Path, source: str, lines: list[str] | None = None) -> Iterator[str]:
    """One output line per input line of ``source`` (a path, or ``-`` for stdin), or of
    ``lines`` when given."""
    cfg = load_run_config(run_dir)
    model_dir, fold = _single_run(run_dir)
    task = TASKS.get(cfg.task)
    model, data = task.load_trained(cfg, model_dir, None, fold=fold)
    if lines is not None:
        yield from task.predict(cfg, model, data, lines)
        return
    if source == "-":
        yield from task.predict(cfg, model, data, sys.stdin)
        return
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            yield from task.predict(cfg, model, data, handle)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from err


def generate_stream(run_dir: Path, **kwargs: Any) -> Iterator[str]:
    """The prompt, then generated text piece by piece (options as in ``Task.generate``)."""
    cfg = load_run_config(run_dir)
    task = TASKS.get(cfg.task)
    if not (run_dir / "best.safetensors").exists():
        raise RunDirError(f"{run_dir}: no trained weights yet")
    model, data = task.load_trained(cfg, run_dir, None)
    yield from task.generate(cfg, model, data, **kwargs)


def generate_text(run_dir: Path, **kwargs: Any) -> str:
    return "".join(generate_stream(run_dir, **kwargs))

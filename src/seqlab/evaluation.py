"""Use a finished run: load it once, then evaluate, predict and generate with it.

:class:`LoadedRun` is a run dir read once (config, task, prepared data and vocabulary,
the best model on its device in eval mode); ``seqlab eval / predict / generate`` and the
HTTP service all go through it. A cross-validated run is evaluated fold by fold and
predicts with its first fold's model.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqlab.config import ExperimentConfig, apply_overrides, parse_override
from seqlab.errors import ConfigError, DataError
from seqlab.loader import from_dict
from seqlab.rundir import RunDir
from seqlab.runs import load_run_config, summarize_folds
from seqlab.tasks import TASKS, Task
from seqlab.train.device import check_device, fallback_device


@dataclass(frozen=True)
class LoadedRun:
    """A finished run, loaded once: its config, task, prepared data and best model.

    ``model`` is on ``cfg.trainer.device`` (or the ``device`` given to :meth:`load`) and in
    eval mode; nothing here writes to the run dir except :meth:`evaluate`'s report.
    """

    run_dir: Path
    cfg: ExperimentConfig
    task: Task
    model: nn.Module
    data: Any

    @classmethod
    def load(
        cls,
        run_dir: Path,
        *,
        data_path: str | None = None,
        fold: int | None = None,
        device: str | None = None,
        sets: Sequence[str] = (),
    ) -> LoadedRun:
        """Load ``run_dir`` (its fold ``fold`` for a cross-validated run; ``data_path``
        replaces the evaluation split's file; ``device`` overrides the trained one; ``sets``
        (``key=value``) override keys of its config that act after training, such as the
        decoding options ``data.beam_size``)."""
        cfg = load_run_config(run_dir)
        if sets:
            check_after_training(sets)
            cfg = from_dict(apply_overrides(cfg.to_dict(), list(sets)))
        if device is not None:
            cfg = cfg.replace(trainer=dataclasses.replace(cfg.trainer, device=device))
        try:
            check_device(cfg.trainer.device)
        except ConfigError as err:
            raise ConfigError(f"{run_dir}: {err}, or pass --device {fallback_device()}") from None
        if cfg.eval.folds > 1 and fold is None and data_path is None:
            fold = 0  # a cross-validated run predicts with its first fold's model
        model_dir = RunDir(run_dir).fold(fold).path if fold is not None else run_dir
        task = TASKS.get(cfg.task)
        model, data = task.load_trained(cfg, model_dir, data_path, fold=fold)
        return cls(run_dir=run_dir, cfg=cfg, task=task, model=model, data=data)

    @property
    def device(self) -> torch.device:
        return torch.device(self.cfg.trainer.device)

    def splits(self) -> list[str]:
        return self.task.splits(self.data)

    def evaluate(self, split: str = "test", *, report: bool = False) -> dict[str, float]:
        """Metrics of the best weights on ``split``; with ``report`` also write the split's
        inspection files (a tagger's confusion counts) into the run dir."""
        held = getattr(self.data, "splits", {})  # a task may hold splits it does not list
        if split not in self.splits() and not (split == "test" and "test" in held):
            raise DataError(f"split {split!r} is not available (this run has {self.splits()})")
        with torch.no_grad():
            metrics = self.task.evaluate(self.cfg, self.model, self.data, split)
            if report:
                self.task.write_report(self.cfg, self.model, self.data, split)
        return metrics

    def predict(self, lines: Iterable[str]) -> Iterator[str]:
        """One output line per input line (labels, tags, nearest words...)."""
        with torch.no_grad():
            yield from self.task.predict(self.cfg, self.model, self.data, lines)

    def generate(self, **options: Any) -> Iterator[str]:
        """The prompt, then generated text piece by piece (options as in ``Task.generate``)."""
        yield from self.task.generate(self.cfg, self.model, self.data, **options)


AFTER_TRAINING = ("data", "eval")
"""The config sections a finished run's ``--set`` may change: how it is evaluated (batch
size, beam, block size, files), never what was trained (``model``, ``optim``, ``trainer``)."""


def check_after_training(sets: Sequence[str]) -> None:
    """Refuse an override of a finished run outside ``AFTER_TRAINING`` with one line."""
    for text in sets:
        path, _ = parse_override(text)
        if path[0] not in AFTER_TRAINING:
            raise ConfigError(
                f"--set {text}: a finished run takes only data.* and eval.* overrides; its "
                f"{path[0]} settings are the ones it was trained with (use --device for the "
                "device, --threads for torch's threads)"
            )


def evaluate_run(
    run_dir: Path,
    split: str = "test",
    data_path: str | None = None,
    device: str | None = None,
    *,
    reference: str | None = None,
    sets: Sequence[str] = (),
) -> dict[str, Any]:
    """Metrics of the best weights on ``split`` (or on the file ``data_path``; with
    ``reference``, the outputs for the lines of ``data_path`` against its lines).

    A cross-validated run is evaluated fold by fold (each fold's own test part) and
    summarized by mean and std. ``sets`` as in :meth:`LoadedRun.load`.
    """
    if reference is not None:
        if data_path is None:
            raise ConfigError("--ref REFERENCE needs --data SOURCE")
        run = LoadedRun.load(run_dir, device=device, sets=sets)
        with torch.no_grad():
            return run.task.evaluate_parallel(
                run.cfg, run.model, run.data, Path(data_path), Path(reference)
            )
    cfg = load_run_config(run_dir)
    if cfg.eval.folds > 1 and data_path is None:
        per_fold = [
            LoadedRun.load(run_dir, fold=fold, device=device, sets=sets).evaluate(split)
            for fold in range(cfg.eval.folds)
        ]
        result = summarize_folds(per_fold)
        result.pop("per_fold")
        return result
    run = LoadedRun.load(run_dir, data_path=data_path, device=device, sets=sets)
    if data_path is not None:
        split = "test" if "test" in run.splits() or split == "test" else split
        return run.evaluate(split)
    return run.evaluate(split, report=True)


def predict_lines(
    run_dir: Path,
    source: str | list[str],
    lines: list[str] | None = None,
    device: str | None = None,
    sets: Sequence[str] = (),
) -> Iterator[str]:
    """One output line per input line of ``source`` (a path, ``-`` for stdin, or several
    paths read in turn), or of ``lines`` when given; ``sets`` as in :meth:`LoadedRun.load`.
    A task that reads whole files (``predict_inputs = "files"``: speech, captioning) gets
    the paths themselves."""
    run = LoadedRun.load(run_dir, device=device, sets=sets)
    if lines is not None:
        yield from run.predict(lines)
        return
    sources = [source] if isinstance(source, str) else source
    if run.task.predict_inputs == "files":
        if sources == ["-"]:
            raise DataError(f"task {run.task.name!r} predicts for files: give their paths")
        yield from run.predict(sources)
        return
    for one in sources:
        yield from _predict_file(run, one)


def _predict_file(run: LoadedRun, source: str) -> Iterator[str]:
    if source == "-":
        yield from run.predict(sys.stdin)
        return
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            yield from run.predict(handle)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from err


def generate_stream(run_dir: Path, device: str | None = None, **options: Any) -> Iterator[str]:
    """The prompt, then generated text piece by piece (options as in ``Task.generate``)."""
    yield from LoadedRun.load(run_dir, device=device).generate(**options)


def generate_text(run_dir: Path, **options: Any) -> str:
    return "".join(generate_stream(run_dir, **options))

"""The task interface: what `seqlab train / eval / predict` need from each kind of job.

A task knows its data config, its models (name -> :class:`~seqlab.contract.ModelSpec`:
config class and build function), how to load data and vocabularies (``setup``) and how
to evaluate. There are two kinds:

* :class:`TrainedTask`: gradient-trained by the one :class:`~seqlab.train.trainer.Trainer`
  on ``model.loss``; the task adds its batches (``train_batches``).
* :class:`FittedTask`: fitted in one pass by its own algorithm (n-gram counts,
  word2vec's threads); the task writes ``fit`` and ``load_trained`` itself.

A task is generic over its prepared data ``DataT`` (what ``setup`` returns).
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

from rich.console import Console
from torch import nn

from seqlab.config import ExperimentConfig, TrainerConfig, build_dataclass, read_yaml
from seqlab.contract import ModelSpec
from seqlab.errors import ConfigError, RunDirError
from seqlab.io import atomic_write_text
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.train import distributed
from seqlab.train.checkpoint import load_weights
from seqlab.train.trainer import Trainer, seed_everything, set_threads

DataT = TypeVar("DataT")


def finished_run_config(task: Any, run_dir: Path, key: str, device: str) -> ExperimentConfig:
    """The config of the finished ``task`` run in ``run_dir``, on ``device``: for a run that
    another run's config names (a teacher, a curriculum's scorer, a GAN's autoencoder and
    language model). ``key`` is that config key; every error names it and the run dir."""
    files = RunDir(run_dir)
    if not files.config.is_file():
        raise ConfigError(
            f"{key}: {run_dir} is not a run dir (no config.yaml), so not a finished run dir"
        )
    raw = read_yaml(files.config)
    if raw.get("task") != task.name:
        raise ConfigError(f"{key}: {run_dir} is a {raw.get('task')!r} run; it must be {task.name}")
    if not files.best_weights.is_file():
        raise ConfigError(
            f"{key}: {run_dir} is not a finished run dir (no {files.best_weights.name}); "
            "train it first"
        )
    model_raw = dict(raw.get("model") or {})
    spec = task.models.get(str(model_raw.get("name", task.default_model)))
    trainer = build_dataclass(TrainerConfig, raw.get("trainer"), "trainer")
    return ExperimentConfig(
        task=task.name,
        data=build_dataclass(task.data_config, raw.get("data"), "data"),
        model=build_dataclass(spec.config, model_raw, "model"),
        trainer=TrainerConfig(**(trainer.__dict__ | {"device": device})),
    )


class Task(ABC, Generic[DataT]):
    """Base class of every task (one per kind of job: classification, LM, tagging...)."""

    name: ClassVar[str]
    data_config: ClassVar[type]
    models: ClassVar[Registry[ModelSpec[Any]]]
    default_model: ClassVar[str]
    supports_folds: ClassVar[bool] = False
    predict_inputs: ClassVar[Literal["lines", "files"]] = "lines"
    """What ``seqlab predict`` hands to :meth:`predict`: the lines of its input files, or
    (``files``: wav, npy) the paths of the files themselves."""

    # ---------------------------------------------------------------- data

    @abstractmethod
    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> DataT:
        """Load the data. With ``train`` build the vocabulary and save it in ``run_dir``;
        otherwise load it from there. Returns the task's prepared data."""

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> DataT:
        """The prepared data of a finished run (``data_path`` replaces the evaluation
        split's file where the task takes one)."""
        if data_path is not None:
            raise ConfigError(f"task {self.name!r} does not take --data")
        return self.setup(cfg, run_dir, train=False)

    def splits(self, data: DataT) -> list[str]:
        """The splits the prepared data has, for the final evaluation."""
        return ["val", "test"]

    def final_splits(self, cfg: ExperimentConfig, data: DataT) -> list[str]:
        """The splits the final evaluation of training measures: ``splits`` less the test
        split (``eval.split``) when ``eval.test`` is false (a search's trials)."""
        return [s for s in self.splits(data) if cfg.eval.test or s != cfg.eval.split]

    # ---------------------------------------------------------------- training

    @abstractmethod
    def fit(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        fold: int | None = None,
        console: Console | None = None,
    ) -> dict[str, float]:
        """Train in ``run_dir`` and return the final metrics of the best model."""

    @abstractmethod
    def load_trained(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        data_path: str | None = None,
        fold: int | None = None,
    ) -> tuple[Any, DataT]:
        """The best model of a finished run, in eval mode, and its data (``data_path``
        replaces the evaluation split's file; ``fold``: which fold of a cross-validated
        run)."""

    # ---------------------------------------------------------------- use

    @abstractmethod
    def evaluate(
        self, cfg: ExperimentConfig, model: Any, data: DataT, split: str
    ) -> dict[str, float]:
        """Metrics on ``split`` with keys prefixed by it (``val_loss``, ``test_acc``)."""

    def final_metrics(
        self, cfg: ExperimentConfig, model: Any, data: DataT, split: str
    ) -> dict[str, float]:
        """Expensive metrics on ``split`` (BLEU, per-task tables), keys prefixed by it:
        computed at the last evaluation of training, every ``eval.final_every``-th, and
        for the final metrics of the best weights. None by default."""
        return {}

    def write_report(self, cfg: ExperimentConfig, model: Any, data: DataT, split: str) -> None:
        """Write what inspection needs of ``split`` (e.g. a tagger's confusion counts) into
        the run dir: after the final evaluation and by ``seqlab eval``, never during
        training. Most tasks need nothing."""
        return None

    def predict(
        self, cfg: ExperimentConfig, model: Any, data: DataT, lines: Iterable[str]
    ) -> Iterator[str]:
        """Task output for each raw input line (``seqlab predict``)."""
        raise ConfigError(f"task {self.name!r} has no predict")
        yield ""  # pragma: no cover - makes this a generator

    def evaluate_parallel(
        self, cfg: ExperimentConfig, model: Any, data: DataT, source: Path, reference: Path
    ) -> dict[str, float]:
        """Metrics of the output for each line of ``source`` against the same line of
        ``reference`` (``seqlab eval RUN --data SOURCE --ref REFERENCE``)."""
        raise ConfigError(f"task {self.name!r} does not take --ref")

    def generate(
        self, cfg: ExperimentConfig, model: Any, data: DataT, **kwargs: Any
    ) -> Iterator[str]:
        """The prompt, then the generated text piece by piece (for streaming)."""
        raise ConfigError(f"task {self.name!r} does not generate text")


class TrainedTask(Task[DataT]):
    """A task whose models follow the model contract and train with the Trainer."""

    def build_model(self, cfg: ExperimentConfig, data: DataT) -> nn.Module:
        """A fresh model for ``cfg.model``, built by its spec and sized to the data."""
        model: nn.Module = self.models.get(cfg.model.name).build(cfg, data)
        return model

    def start_model(self, cfg: ExperimentConfig, model: nn.Module, data: DataT) -> None:
        """Start a freshly built model before training (not when resuming or loading a
        trained run): ``model.init_from`` (``tasks/transfer.py``) where the task has it."""

    @abstractmethod
    def train_batches(self, cfg: ExperimentConfig, data: DataT, epoch: int) -> Iterable[Any]:
        """The training batches of ``epoch``, the same every time for the same epoch."""

    def evaluate_in_training(
        self, cfg: ExperimentConfig, model: nn.Module, data: DataT
    ) -> dict[str, float]:
        """The evaluation the trainer runs (validation); a task whose training reacts to it
        (linear start of memory networks) adds that here."""
        return self.evaluate(cfg, model, data, "val")

    def fit(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        fold: int | None = None,
        console: Console | None = None,
    ) -> dict[str, float]:
        """Train in ``run_dir`` and return the final metrics of the best weights.

        In a process group (``--nproc N``, torchrun) rank 0 sets the data up first (and
        writes the vocabularies), the others then read them; each trains on its part of the
        batches (``seqlab.train.distributed``); rank 0 alone computes the final metrics (the
        others return ``{}``)."""
        ctx = distributed.context()
        seed_everything(cfg.trainer.seed, cfg.trainer.deterministic)
        set_threads(cfg.trainer.threads)
        data = distributed.main_first(
            ctx,
            lambda: self.setup(cfg, run_dir, train=not resume, fold=fold),
            lambda: self.setup(cfg, run_dir, train=False, fold=fold),
        )
        model = self.build_model(cfg, data).to(cfg.trainer.device)
        if not resume:  # a resumed run's checkpoint holds the weights
            self.start_model(cfg, model, data)
        trainer = Trainer(
            model,
            cfg,
            run_dir,
            evaluate=lambda m: self.evaluate_in_training(cfg, m, data),
            console=console,
            final_metrics=lambda m: self.final_metrics(cfg, m, data, "val"),
        )
        trainer.fit(self._batches(cfg, data, ctx), resume=resume)
        if not ctx.main:
            return {}
        load_weights(RunDir(run_dir).best_weights, model)
        model.eval()
        metrics: dict[str, float] = {"steps": float(trainer.state.step)}
        for split in self.final_splits(cfg, data):
            metrics.update(self.evaluate(cfg, model, data, split))
            metrics.update(self.final_metrics(cfg, model, data, split))
            self.write_report(cfg, model, data, split)
        return metrics

    def _batches(
        self, cfg: ExperimentConfig, data: DataT, ctx: distributed.Context
    ) -> Callable[[int], Iterable[Any]]:
        """``epoch -> batches``: the task's, or this process's part of them in a group."""
        if not ctx.active:
            return lambda epoch: self.train_batches(cfg, data, epoch)
        size = distributed.rank_batch_size(cfg.trainer.batch_size, ctx.world)
        # world x accumulate batches of this size make one optimizer update (a curriculum
        # maps batches to updates by it); the trainer still steps every `accumulate` ones
        accumulate = cfg.trainer.accumulate * ctx.world
        per_rank = cfg.replace(
            trainer=dataclasses.replace(cfg.trainer, batch_size=size, accumulate=accumulate)
        )
        return lambda epoch: distributed.rank_batches(
            lambda: self.train_batches(cfg, data, epoch),
            lambda: self.train_batches(per_rank, data, epoch),
            ctx,
        )

    def load_trained(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        data_path: str | None = None,
        fold: int | None = None,
    ) -> tuple[nn.Module, DataT]:
        if fold is not None and data_path is None:
            data = self.setup(cfg, run_dir, train=False, fold=fold)
        else:
            data = self.setup_eval(cfg, run_dir, data_path)
        model = self.build_model(cfg, data).to(cfg.trainer.device)
        load_weights(RunDir(run_dir).best_weights, model)
        model.eval()
        return model, data


class FittedTask(Task[DataT]):
    """A task fitted in one pass by its own algorithm (counting, word2vec's threads): no
    Trainer, no batches, no checkpoint; ``--resume`` fits again. Its ``fit`` logs one
    record with :meth:`log_fit`, so ``metrics.jsonl`` exists for every run."""

    @staticmethod
    def log_fit(run_dir: Path, step: int, epoch: int, metrics: dict[str, float]) -> None:
        record = {"step": step, "epoch": epoch, **metrics}
        atomic_write_text(RunDir(run_dir).metrics_log, json.dumps(record) + "\n")


def save_data_report(run_dir: Path, report: dict[str, Any]) -> None:
    """What a task's data preparation read, kept and left out, into
    ``RUN_DIR/data_report.json``. Called only when training: a loaded run (eval, predict,
    serve) leaves its run dir byte-identical."""
    atomic_write_text(RunDir(run_dir).data_report, json.dumps(report, indent=2) + "\n")


def save_labels(run_dir: Path, labels: list[str]) -> None:
    """A classifier's class names, in label-id order, into the run dir."""
    atomic_write_text(RunDir(run_dir).labels, json.dumps(labels))


def load_labels(run_dir: Path, task: str) -> list[str]:
    """The class names a ``task`` run saved; a clear RunDirError when they are missing."""
    path = RunDir(run_dir).labels
    if not path.is_file():
        raise RunDirError(f"{path}: missing; is this a {task} run dir?")
    labels: list[str] = json.loads(path.read_text(encoding="utf-8"))
    return labels

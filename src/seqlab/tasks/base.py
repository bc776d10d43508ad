"""The task interface: what `seqlab train / eval / predict` need from each kind of job.

A task knows its data config, its models (name -> config dataclass), how to load data
and vocabularies (``setup``), how to batch, build a model and evaluate it. The generic
``fit`` uses the one :class:`~seqlab.train.trainer.Trainer`; tasks that are not trained
by gradient steps on ``model.loss`` (n-gram counts, word2vec) override ``fit``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from torch import nn

from seqlab.config import ExperimentConfig
from seqlab.errors import ConfigError
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.train.checkpoint import load_weights
from seqlab.train.trainer import Trainer, seed_everything, set_threads


class Task(ABC):
    """Base class of every task (one per kind of job: classification, LM, tagging...)."""

    name: ClassVar[str]
    data_config: ClassVar[type]
    models: ClassVar[Registry[type]]
    default_model: ClassVar[str]
    supports_folds: ClassVar[bool] = False

    # ---------------------------------------------------------------- data and model

    @abstractmethod
    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> Any:
        """Load the data. With ``train`` build the vocabulary and save it in ``run_dir``;
        otherwise load it from there. Returns the task's prepared data."""

    @abstractmethod
    def build_model(self, cfg: ExperimentConfig, data: Any) -> nn.Module:
        """A fresh model for ``cfg.model`` sized to the prepared data."""

    @abstractmethod
    def train_batches(self, cfg: ExperimentConfig, data: Any, epoch: int) -> Iterable[Any]:
        """The training batches of ``epoch``, the same every time for the same epoch."""

    @abstractmethod
    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: Any, split: str
    ) -> dict[str, float]:
        """Metrics on ``split`` with keys prefixed by it (``val_loss``, ``test_acc``)."""

    def write_report(self, cfg: ExperimentConfig, model: nn.Module, data: Any, split: str) -> None:
        """Write what inspection needs of ``split`` (e.g. a tagger's confusion counts) into
        the run dir: after the final evaluation and by ``seqlab eval``, never during
        training. Most tasks need nothing."""
        return None

    def splits(self, data: Any) -> list[str]:
        """The splits the prepared data has, for the final evaluation."""
        return ["val", "test"]

    # ---------------------------------------------------------------- training

    def fit(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        fold: int | None = None,
        console: Console | None = None,
    ) -> dict[str, float]:
        """Train in ``run_dir`` and return the final metrics of the best weights."""
        seed_everything(cfg.trainer.seed, cfg.trainer.deterministic)
        set_threads(cfg.trainer.threads)
        data = self.setup(cfg, run_dir, train=not resume, fold=fold)
        model = self.build_model(cfg, data).to(cfg.trainer.device)
        trainer = Trainer(
            model,
            cfg,
            run_dir,
            evaluate=lambda m: self.evaluate(cfg, m, data, "val"),
            console=console,
        )
        trainer.fit(lambda epoch: self.train_batches(cfg, data, epoch), resume=resume)
        load_weights(RunDir(run_dir).best_weights, model)
        model.eval()
        metrics: dict[str, float] = {"steps": float(trainer.state.step)}
        for split in self.splits(data):
            metrics.update(self.evaluate(cfg, model, data, split))
            self.write_report(cfg, model, data, split)
        return metrics

    def load_trained(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        data_path: str | None = None,
        fold: int | None = None,
    ) -> tuple[nn.Module, Any]:
        """The best model of a finished run and its data (``data_path`` replaces the
        evaluation split's file; ``fold``: which fold of a cross-validated run)."""
        if fold is not None and data_path is None:
            data = self.setup(cfg, run_dir, train=False, fold=fold)
        else:
            data = self.setup_eval(cfg, run_dir, data_path)
        model = self.build_model(cfg, data).to(cfg.trainer.device)
        load_weights(RunDir(run_dir).best_weights, model)
        model.eval()
        return model, data

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> Any:
        if data_path is not None:
            raise ConfigError(f"task {self.name!r} does not take --data")
        return self.setup(cfg, run_dir, train=False)

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: Any, lines: Iterable[str]
    ) -> Iterator[str]:
        """Task output for each raw input line (``seqlab predict``)."""
        raise ConfigError(f"task {self.name!r} has no predict")
        yield ""  # pragma: no cover - makes this a generator

    def generate(
        self, cfg: ExperimentConfig, model: nn.Module, data: Any, **kwargs: Any
    ) -> Iterator[str]:
        """The prompt, then the generated text piece by piece (for streaming)."""
        raise ConfigError(f"task {self.name!r} does not generate text")

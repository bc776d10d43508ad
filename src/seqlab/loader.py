"""Task-aware config loading: YAML or a plain dict -> a validated ExperimentConfig.

``config.py`` knows the sections every experiment shares and no task; this module sits
above ``tasks/`` and picks the ``data`` and ``model`` dataclasses from the task registry
(``task: lm_rnn``) and the task's model registry (``model.name``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqlab.config import (
    SECTIONS,
    AnchorConfig,
    EvalConfig,
    ExperimentConfig,
    OptimConfig,
    TrainerConfig,
    apply_overrides,
    build_dataclass,
    read_yaml,
    unknown_key,
)
from seqlab.errors import ConfigError
from seqlab.shipped import resolve_config
from seqlab.tasks import TASKS


def from_dict(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a plain dict into an ExperimentConfig (task and model chosen by name)."""
    for key in raw:
        if key not in SECTIONS:
            raise unknown_key(key, list(SECTIONS))
    if "task" not in raw:
        raise ConfigError("config key 'task' is required (e.g. task: lm_char_mlp)")
    task = TASKS.get(str(raw["task"]))
    data = build_dataclass(task.data_config, raw.get("data"), "data")
    model_raw = dict(raw.get("model") or {})
    model_name = model_raw.get("name", task.default_model)
    model_cls = task.models.get(str(model_name)).config
    model_raw["name"] = model_name
    model = build_dataclass(model_cls, model_raw, "model")
    return ExperimentConfig(
        task=str(raw["task"]),
        data=data,
        model=model,
        optim=build_dataclass(OptimConfig, raw.get("optim"), "optim"),
        trainer=build_dataclass(TrainerConfig, raw.get("trainer"), "trainer"),
        eval=build_dataclass(EvalConfig, raw.get("eval"), "eval"),
        anchor=(
            None
            if raw.get("anchor") is None
            else build_dataclass(AnchorConfig, raw["anchor"], "anchor")
        ),
    )


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """The config file at ``path`` (or the shipped config of that name: ``ptb_small``)
    with ``overrides`` (``["trainer.epochs=3"]``) applied, validated."""
    return from_dict(apply_overrides(read_yaml(resolve_config(path)), overrides or []))

from __future__ import annotations

from pathlib import Path

import pytest

from seqlab.config import (
    OptimConfig,
    TrainerConfig,
    apply_overrides,
    build_dataclass,
    save_config,
)
from seqlab.errors import ConfigError
from seqlab.loader import from_dict, load_config

RAW = {
    "task": "bow_classify",
    "data": {"dataset": "rt_polarity"},
    "model": {"name": "mlp", "hidden_size": 16},
    "optim": {"name": "sgd", "lr": "1e-3"},
    "trainer": {"epochs": 2},
}


def test_builds_typed_frozen_sections() -> None:
    cfg = from_dict(RAW)
    assert cfg.model.hidden_size == 16
    assert cfg.optim.lr == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as a string
    assert isinstance(cfg.trainer, TrainerConfig)
    with pytest.raises(AttributeError):
        cfg.trainer.epochs = 3  # type: ignore[misc]


def test_unknown_key_names_key_and_closest() -> None:
    raw = apply_overrides(RAW, ["trainer.epoch=3"])
    with pytest.raises(ConfigError, match=r"'trainer.epoch'.*did you mean 'trainer.epochs'"):
        from_dict(raw)


def test_unknown_model_and_task_suggest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'mlp'"):
        from_dict(apply_overrides(RAW, ["model.name=mpl"]))
    with pytest.raises(ConfigError, match="unknown task 'bow_clasify'"):
        from_dict(apply_overrides(RAW, ["task=bow_clasify"]))


def test_override_types_are_checked() -> None:
    cfg = from_dict(apply_overrides(RAW, ["trainer.max_steps=20", "trainer.clip_norm=5"]))
    assert cfg.trainer.max_steps == 20
    assert cfg.trainer.clip_norm == 5.0
    with pytest.raises(ConfigError, match="trainer.epochs.*integer"):
        from_dict(apply_overrides(RAW, ["trainer.epochs=many"]))
    with pytest.raises(ConfigError, match="optim.name.*one of"):
        from_dict(apply_overrides(RAW, ["optim.name=lbfgs"]))
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(RAW, ["trainer.epochs"])
    with pytest.raises(ConfigError, match=r"trainer.ema_decay must be in \[0, 1\), got 1.0"):
        from_dict(apply_overrides(RAW, ["trainer.ema_decay=1"]))


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ConfigError):
        build_dataclass(TrainerConfig, {"epochs": True}, "trainer")


def test_tuple_fields() -> None:
    optim = build_dataclass(OptimConfig, {"betas": [0.8, 0.9]}, "optim")
    assert optim.betas == (0.8, 0.9)
    with pytest.raises(ConfigError, match="expected 2 values"):
        build_dataclass(OptimConfig, {"betas": [0.8]}, "optim")


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = from_dict(RAW)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: not valid YAML"):
        load_config(bad)


def test_every_shipped_config_validates() -> None:
    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)

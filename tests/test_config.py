from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from seqlab.config import (
    OptimConfig,
    TrainerConfig,
    apply_overrides,
    build_dataclass,
    save_config,
)
from seqlab.errors import ConfigError
from seqlab.loader import from_dict, load_config
from seqlab.train.optim import build_optimizer
from seqlab.train.schedules import Schedule

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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lr=-5"], r"optim.lr must be > 0, got -5.0"),
        (["optim.lr=0"], r"optim.lr must be > 0"),
        (["optim.lr=.inf"], r"optim.lr must be a finite number, got inf"),
        (["optim.momentum=-0.1"], r"optim.momentum must be in \[0, 1\)"),
        (["optim.momentum=1"], r"optim.momentum must be in \[0, 1\)"),
        (["optim.betas=[0.9,1.0]"], r"optim.betas\[1\] must be in \[0, 1\), got 1.0"),
        (["optim.betas=[-0.1,0.9]"], r"optim.betas\[0\] must be in \[0, 1\)"),
        (["optim.eps=0"], r"optim.eps must be > 0"),
        (["optim.alpha=1.5"], r"optim.alpha must be in \[0, 1\)"),
        (["optim.rho=-1"], r"optim.rho must be in \[0, 1\)"),
        (["optim.l1=-1e-4"], r"optim.l1 must be >= 0"),
        (["optim.l2=-1e-4"], r"optim.l2 must be >= 0"),
        (["optim.gamma=0"], r"optim.gamma must be > 0"),
        (["optim.schedule=plateau", "optim.gamma=1"], r"optim.gamma must be < 1 with .*plateau"),
        (["optim.step_size=0"], r"optim.step_size must be >= 1, got 0"),
        (["optim.decay_start=-1"], r"optim.decay_start must be >= 0"),
        (["optim.patience=-2"], r"optim.patience must be >= 0"),
        (["optim.warmup_steps=-10"], r"optim.warmup_steps must be >= 0"),
        (["optim.min_lr=-1"], r"optim.min_lr must be >= 0"),
        (["optim.nesterov=true"], r"optim.nesterov needs .*momentum > 0"),
        (["optim.name=adam", "optim.nesterov=true", "optim.momentum=0.9"], r"optim.nesterov"),
    ],
)
def test_optimizer_section_is_validated(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(apply_overrides(RAW, overrides))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(RAW))
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides)


def test_accepted_optimizer_values_build_in_torch() -> None:
    """The bounds are no tighter than needed: edge values that pass also build."""
    params = [torch.nn.Parameter(torch.zeros(2))]
    for name in ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw"):
        for schedule in ("constant", "step", "epoch_decay", "plateau", "warmup"):
            raw = {
                "name": name,
                "lr": 1e-9,
                "momentum": 0.0 if name != "sgd" else 0.99,
                "nesterov": name == "sgd",
                "betas": [0.0, 0.999],
                "eps": 1e-12,
                "alpha": 0.0,
                "rho": 0.0,
                "schedule": schedule,
                "gamma": 0.999,
                "patience": 0,
                "warmup_steps": 0,
            }
            optim = build_dataclass(OptimConfig, raw, "optim")
            Schedule(build_optimizer(params, optim), optim)


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CPU", "cuda:0 ", ""])
def test_malformed_device_is_refused(device: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"trainer.device must be cpu, cuda, cuda:N .*{device!r}"
    ):
        build_dataclass(TrainerConfig, {"device": device}, "trainer")
    for good in ("cpu", "cuda", "cuda:1", "mps"):
        assert build_dataclass(TrainerConfig, {"device": good}, "trainer").device == good

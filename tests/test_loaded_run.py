"""LoadedRun: a finished run read once and used by eval, predict and generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.contract import ModelSpec
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.evaluation import LoadedRun, evaluate_run
from seqlab.loader import from_dict
from seqlab.rundir import RunDir
from seqlab.runs import train
from seqlab.tasks import TASKS
from seqlab.tasks.base import FittedTask, TrainedTask

POS = ["a fine warm film", "good and fine", "warm good acting", "a good film", "fine fine"]
NEG = ["a dull cold film", "bad and dull", "cold bad acting", "a bad film", "dull dull"]


def bow_run(tmp_path: Path) -> Path:
    lines = [f"pos\t{t}" for t in POS * 4] + [f"neg\t{t}" for t in NEG * 4]
    data = tmp_path / "reviews.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = from_dict(
        {
            "task": "bow_classify",
            "data": {"dataset": str(data), "encoding": "utf-8"},
            "model": {"name": "logreg"},
            "optim": {"lr": 0.5, "name": "sgd"},
            "trainer": {"epochs": 5, "batch_size": 4, "progress": False},
            "eval": {"metric": "val_acc", "mode": "max"},
        }
    )
    run = tmp_path / "run"
    train(cfg, run)
    return run


def test_loaded_run_is_built_once_and_answers_eval_and_predict(tmp_path: Path) -> None:
    run_dir = bow_run(tmp_path)
    run = LoadedRun.load(run_dir)
    assert not run.model.training
    assert run.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in run.model.parameters())
    final = json.loads(RunDir(run_dir).metrics.read_text())
    assert run.evaluate("test")["test_acc"] == pytest.approx(final["test_acc"])
    assert evaluate_run(run_dir)["test_acc"] == pytest.approx(final["test_acc"])
    rows = [line.split("\t") for line in run.predict(["good warm film", "cold dull film"])]
    assert [row[0] for row in rows] == ["pos", "neg"]
    with pytest.raises(DataError, match="split 'train' is not available"):
        run.evaluate("train")


def test_loaded_run_takes_a_device_override_and_names_a_missing_run(tmp_path: Path) -> None:
    """A run trained on a GPU can be loaded on the CPU."""
    run_dir = bow_run(tmp_path)
    config = RunDir(run_dir).config
    config.write_text(config.read_text().replace("device: cpu", "device: cuda:7"))
    with pytest.raises(ConfigError, match="cuda:7.*or pass --device cpu"):
        LoadedRun.load(run_dir)
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert "test_acc" in json.loads(result.output.strip().splitlines()[-1])
    run = LoadedRun.load(run_dir, device="cpu")
    assert run.cfg.trainer.device == "cpu"
    assert all(p.device.type == "cpu" for p in run.model.parameters())
    assert run.evaluate("test")["test_acc"] >= 0
    with pytest.raises(RunDirError, match="no such run dir"):
        LoadedRun.load(tmp_path / "nowhere")


def test_every_model_registry_entry_is_a_spec_with_a_named_config() -> None:
    """A new model is one registry line: config class + build function (+ collation)."""
    for name in TASKS:
        task = TASKS.get(name)
        assert isinstance(task, TrainedTask | FittedTask), name
        assert task.default_model in task.models, name
        for model_name in task.models:
            spec = task.models.get(model_name)
            assert isinstance(spec, ModelSpec), (name, model_name)
            assert callable(spec.build)
            assert "name" in spec.config.__dataclass_fields__, (name, model_name)


def test_resume_and_force_exclude_each_other(tmp_path: Path) -> None:
    """--resume --force used to resume silently (the force was dropped on that path)."""
    run_dir = bow_run(tmp_path)
    before = RunDir(run_dir).metrics.read_text()
    cfg = LoadedRun.load(run_dir).cfg
    with pytest.raises(ConfigError, match="exclude each other"):
        train(cfg, run_dir, resume=True, force=True)
    assert RunDir(run_dir).metrics.read_text() == before


def test_a_run_without_its_label_names_is_named(tmp_path: Path) -> None:
    run_dir = bow_run(tmp_path)
    RunDir(run_dir).labels.unlink()
    with pytest.raises(RunDirError, match="labels.json: missing; is this a bow_classify run dir"):
        LoadedRun.load(run_dir)


def test_a_finished_run_takes_only_data_and_eval_overrides(tmp_path: Path) -> None:
    """`--set` on eval/predict changes how a run is evaluated, never what was trained."""
    run_dir = bow_run(tmp_path)
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--set", "model.name=mlp"])
    assert result.exit_code == 2
    assert "--set model.name=mlp: a finished run takes only data.* and eval.*" in result.output
    with pytest.raises(ConfigError, match="trainer settings are the ones it was trained with"):
        LoadedRun.load(run_dir, sets=["trainer.batch_size=2"])
    final = json.loads(RunDir(run_dir).metrics.read_text())
    run = LoadedRun.load(run_dir, sets=["data.val_fraction=0.1"])
    assert run.evaluate("test")["test_acc"] == pytest.approx(final["test_acc"])

"""run.json (provenance of every run) and `seqlab report` (recipes, mean ± std over seeds)."""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.config import read_yaml
from seqlab.errors import ConfigError, DataError
from seqlab.loader import from_dict
from seqlab.provenance import PYTHON_API, git_state, recipe_hash
from seqlab.report import build_report, to_markdown
from seqlab.rundir import RunDir
from seqlab.runs import train
from seqlab.train.trainer import Interrupted

POS = ["a fine warm film", "good and fine", "warm good acting", "a good film", "fine fine"]
NEG = ["a dull cold film", "bad and dull", "cold bad acting", "a bad film", "dull dull"]


def write_data(tmp_path: Path) -> Path:
    lines = [f"pos\t{t}" for t in POS * 4] + [f"neg\t{t}" for t in NEG * 4]
    data = tmp_path / "reviews.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


def raw_config(data: Path, **extra: Any) -> dict[str, Any]:
    return {
        "task": "bow_classify",
        "data": {"dataset": str(data), "encoding": "utf-8"},
        "model": {"name": "logreg"},
        "optim": {"lr": 0.5, "name": "sgd"},
        "trainer": {"epochs": 2, "batch_size": 4, "progress": False},
        "eval": {"metric": "val_acc", "mode": "max"},
        **extra,
    }


def test_run_json_holds_the_provenance_of_a_finished_run(tmp_path: Path) -> None:
    data = write_data(tmp_path)
    run = tmp_path / "run"
    metrics = train(from_dict(raw_config(data)), run)
    record = json.loads(RunDir(run).provenance.read_text())
    assert record["status"] == "done"
    assert record["command"] == PYTHON_API
    assert record["overrides"] == []
    assert record["seed"] == 1
    assert len(record["config_hash"]) == 64 and int(record["config_hash"], 16) >= 0
    saved = from_dict(json.loads(json.dumps(raw_config(data)))).to_dict()
    assert record["recipe_hash"] == recipe_hash(saved)
    assert record["recipe_hash"] == recipe_hash(read_yaml(RunDir(run).config))  # what report reads
    start = datetime.fromisoformat(record["start"])
    end = datetime.fromisoformat(record["end"])
    assert start.utcoffset() is not None and start.utcoffset().total_seconds() == 0
    assert start <= end
    assert isinstance(record["wall_s"], float) and record["wall_s"] > 0
    assert isinstance(record["git"]["commit"], str)
    assert record["git"]["dirty"] in (True, False, "unknown")
    if record["git"]["commit"] != "unknown":  # this test runs from a checkout of seqlab
        assert len(record["git"]["commit"]) == 40
    machine = record["machine"]
    assert isinstance(machine["cpu"], str) and machine["cpu"]
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert isinstance(machine["torch_threads"], int) and machine["torch_threads"] >= 1
    assert machine["gpu"] is None  # a CPU run names no GPU
    assert set(record["versions"]) == {"seqlab", "torch", "python"}
    assert record["selection"] == {"metric": "val_acc", "mode": "max"}
    assert record["metrics"]["test_acc"] == pytest.approx(metrics["test_acc"])


def test_a_cross_validated_run_has_one_run_json_and_is_one_run(tmp_path: Path) -> None:
    data = write_data(tmp_path)
    run = tmp_path / "cv"
    train(from_dict(raw_config(data, eval={"metric": "val_acc", "mode": "max", "folds": 2})), run)
    record = json.loads(RunDir(run).provenance.read_text())
    assert record["status"] == "done" and record["metrics"]["folds"] == 2
    assert "per_fold" not in record["metrics"]
    assert not RunDir(RunDir(run).fold(0).path).provenance.exists()
    report = build_report([tmp_path])
    assert [row["n"] for row in report["rows"]] == [1]
    final = json.loads(RunDir(run).metrics.read_text())
    assert report["rows"][0]["metrics"]["test_acc"]["mean"] == pytest.approx(final["test_acc"])


def test_run_json_says_failed_when_a_run_fails_and_keeps_its_command(tmp_path: Path) -> None:
    data = write_data(tmp_path)
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["train", str(_config_file(tmp_path, data)), "--set", "trainer.seed=3", "--out", str(run)],
    )
    assert result.exit_code == 0, result.output
    first = json.loads(RunDir(run).provenance.read_text())
    assert first["overrides"] == ["trainer.seed=3"] and first["seed"] == 3
    assert first["config_path"].endswith("recipe.yaml")
    data.unlink()  # resuming for more epochs now fails on the missing data
    cfg = from_dict(raw_config(data, trainer={"epochs": 4, "progress": False, "seed": 3}))
    with pytest.raises(DataError):
        train(cfg, run, resume=True)
    record = json.loads(RunDir(run).provenance.read_text())
    assert record["status"] == "failed"
    assert record["resumed"] is True
    assert "DataError" in record["error"]
    assert record["overrides"] == ["trainer.seed=3"]  # the command that made the run stays
    assert record["first_start"] == first["first_start"]


def test_run_json_says_interrupted_after_ctrl_c(tmp_path: Path) -> None:
    data = write_data(tmp_path)
    run = tmp_path / "run"
    trainer = {"epochs": 100_000, "max_minutes": 0.5, "progress": False, "log_every": 0}
    cfg = from_dict(raw_config(data, trainer=trainer))
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises((Interrupted, KeyboardInterrupt)):
            train(cfg, run)
    finally:
        timer.cancel()
    record = json.loads(RunDir(run).provenance.read_text())
    assert record["status"] == "interrupted"
    assert record["metrics"] is None and record["wall_s"] < 25


def _config_file(tmp_path: Path, data: Path, **extra: Any) -> Path:
    import yaml

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw_config(data, **extra)), encoding="utf-8")
    return path


def test_report_groups_seeds_into_one_row_per_recipe(tmp_path: Path) -> None:
    data = write_data(tmp_path)
    anchor = {"value": 0.77, "source": "Pang & Lee 2005, Table 2"}
    config = _config_file(tmp_path, data, anchor=anchor)
    runs = tmp_path / "runs"
    cli = CliRunner()
    for seed in (1, 2):
        out = runs / f"s{seed}"
        args = ["train", str(config), "--set", f"trainer.seed={seed}", "--out", str(out)]
        assert cli.invoke(app, args).exit_code == 0
    other = runs / "lr"  # a different recipe: another row
    args = ["train", str(config), "--set", "optim.lr=0.05", "--out", str(other)]
    assert cli.invoke(app, args).exit_code == 0
    old = runs / "old"  # a run from before run.json: reported from config.yaml + metrics.json
    train(from_dict(raw_config(data, trainer={"epochs": 3, "progress": False})), old)
    RunDir(old).provenance.unlink()

    report = build_report([runs])
    assert len(report["rows"]) == 3
    by_runs = {tuple(sorted(Path(r).name for r in row["runs"])): row for row in report["rows"]}
    seeds = by_runs[("s1", "s2")]
    finals = [json.loads(RunDir(runs / f"s{s}").metrics.read_text()) for s in (1, 2)]
    accs = [m["test_acc"] for m in finals]
    assert seeds["n"] == 2 and seeds["seeds"] == [1, 2]
    assert seeds["metrics"]["test_acc"]["mean"] == pytest.approx(statistics.fmean(accs))
    assert seeds["metrics"]["test_acc"]["std"] == pytest.approx(statistics.stdev(accs))
    assert set(seeds["metrics"]) == {"test_acc", "val_acc"}
    assert seeds["anchor"] == {**anchor, "metric": "test_acc"}
    assert "--set trainer.seed=S" in seeds["command"] and seeds["command"].endswith("S in 1 2")
    assert seeds["commands"][1].endswith("--set trainer.seed=2 --out runs/recipe_s2")
    assert seeds["provenance"] == "ok"
    lr = by_runs[("lr",)]
    assert lr["n"] == 1 and lr["metrics"]["test_acc"]["std"] is None
    assert "optim.lr=0.05" in lr["command"]
    assert by_runs[("old",)]["provenance"] == "missing"

    markdown = to_markdown(report)
    lines = markdown.splitlines()
    assert lines[0] == "| recipe | n | test_acc | val_acc | anchor | command | provenance |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert len(lines) == 5
    assert "provenance: missing" in markdown and "Pang & Lee 2005, Table 2" in markdown

    result = cli.invoke(app, ["report", str(runs), "--metric", "test_acc", "--json"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert {len(row["metrics"]) for row in last["rows"]} == {1}
    md = cli.invoke(app, ["report", str(runs / "s1"), str(runs / "s2"), "--markdown"])
    assert md.exit_code == 0
    assert [line[:3] for line in md.output.splitlines()] == ["| r", "|--", "| /"]  # one row


def test_anchor_is_optional_and_checked() -> None:
    raw = {"task": "bow_classify", "data": {"dataset": "x.tsv"}}
    assert from_dict(raw).anchor is None
    assert "anchor" not in from_dict(raw).to_dict()  # configs without one save unchanged
    cfg = from_dict({**raw, "anchor": {"value": 81.5, "source": "Kim 2014, Table 2"}})
    assert cfg.anchor is not None and cfg.anchor.value == 81.5
    assert from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="anchor.sourc"):
        from_dict({**raw, "anchor": {"value": 81.5, "sourc": "x"}})
    with pytest.raises(ConfigError, match="anchor.source"):
        from_dict({**raw, "anchor": {"value": 81.5, "source": " "}})


def test_git_state_of_a_checkout_and_of_no_checkout(tmp_path: Path) -> None:
    state = git_state()  # the tests run from a checkout of seqlab
    if state["commit"] != "unknown":
        assert len(state["commit"]) == 40 and isinstance(state["dirty"], bool)
    assert git_state(tmp_path) == {"commit": "unknown", "dirty": "unknown"}

"""Model selection: a recipe over seeds, the search on dev (never test), curve plots."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.errors import ConfigError
from seqlab.selection.search import search
from seqlab.selection.seeds import parse_seeds
from seqlab.selection.space import override_text, read_space

runner = CliRunner()
POS = ["a fine moving film", "great acting", "funny and wise", "a joy", "smart and lovely"]
NEG = ["a dull tired mess", "bad acting", "boring and stupid", "a chore", "dumb and tedious"]
CNN = {"name": "cnn", "embedding_size": 8, "maps": 4, "widths": [1, 2], "dropout": 0.0}


def write_config(tmp_path: Path, epochs: int = 2) -> Path:
    data = tmp_path / "reviews.tsv"
    lines = [f"pos\t{t}" for t in POS] + [f"neg\t{t}" for t in NEG]
    data.write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    cfg = {
        "task": "classify",
        "data": {"dataset": str(data), "encoding": "utf-8", "val_fraction": 0.2},
        "model": CNN,
        "optim": {"name": "adam", "lr": 0.01},
        "trainer": {"epochs": epochs, "batch_size": 8, "progress": False, "log_every": 0},
        "eval": {"metric": "val_acc", "mode": "max"},
    }
    path = tmp_path / "cls.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def write_space(tmp_path: Path, space: dict[str, object]) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def test_parse_seeds() -> None:
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("1,3,7") == [1, 3, 7]
    assert parse_seeds("2-3,9") == [2, 3, 9]
    for bad in ("a", "3-1", "1,1", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_seeds_train_each_seed_and_report_mean_std(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = tmp_path / "seeds"
    result = runner.invoke(app, ["train", str(config), "--seeds", "1,2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    accs = [json.loads((out / f"seed_{s}" / "metrics.json").read_text()) for s in (1, 2)]
    assert [
        yaml.safe_load((out / f"seed_{s}/config.yaml").read_text())["trainer"]["seed"]
        for s in (1, 2)
    ] == [1, 2]
    report = json.loads((out / "seeds.json").read_text())
    [row] = report["rows"]
    assert row["n"] == 2 and row["seeds"] == [1, 2]
    mean = (accs[0]["val_acc"] + accs[1]["val_acc"]) / 2
    assert row["metrics"]["val_acc"]["mean"] == pytest.approx(mean)
    assert "test_acc" in row["metrics"]  # the recipe computes test: it is reported
    assert "val_acc" in result.output and "±" in result.output
    # resuming keeps the finished seeds and adds the new one
    result = runner.invoke(
        app, ["train", str(config), "--seeds", "1-3", "--out", str(out), "--resume"]
    )
    assert result.exit_code == 0, result.output
    assert "finished already" in result.output
    assert json.loads((out / "seeds.json").read_text())["rows"][0]["n"] == 3


def test_seeds_without_test_report_dev_only(tmp_path: Path) -> None:
    config = write_config(tmp_path, epochs=1)
    out = tmp_path / "seeds"
    args = ["train", str(config), "--seeds", "1", "--out", str(out), "--set", "eval.test=false"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [row] = json.loads((out / "seeds.json").read_text())["rows"]
    assert "val_acc" in row["metrics"] and not any(k.startswith("test") for k in row["metrics"])
    result = runner.invoke(app, [*args[:5], "--set", "trainer.seed=3"])
    assert result.exit_code != 0 and "trainer.seed" in result.output


def test_search_random_never_computes_test_and_writes_best(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    space = write_space(
        tmp_path,
        {"optim.lr": {"log-float": [0.001, 0.05]}, "model.maps": {"choice": [2, 4]}},
    )
    out = tmp_path / "search"
    result = runner.invoke(
        app,
        [
            "search",
            str(config),
            "--space",
            str(space),
            "--trials",
            "3",
            "--sampler",
            "random",
            "--out",
            str(out),
            "--no-prune",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Test not computed" in result.output
    assert result.output.count("Train the best config") == 1  # said once, not twice
    summary = json.loads((out / "trials.json").read_text())
    assert len(summary["trials"]) == 3 and summary["test"] == "not computed"
    for row in summary["trials"]:
        run = Path(row["run_dir"])
        final = json.loads((run / "metrics.json").read_text())
        logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert "val_acc" in final
        assert not any(k.startswith("test") for k in final)
        assert not any(k.startswith("test") for r in logged for k in r)
        assert row["params"]["model.maps"] in (2, 4)
        assert (
            yaml.safe_load((run / "config.yaml").read_text())["model"]["maps"]
            == (row["params"]["model.maps"])
        )
    values = [r["value"] for r in summary["trials"]]
    assert values == sorted(values, reverse=True)  # best dev first
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["eval"]["test"] is True
    assert best["model"]["maps"] == summary["trials"][0]["params"]["model.maps"]
    table = (out / "trials.md").read_text()
    assert "model.maps" in table and "Test not computed" in table
    assert all(f"| {r['params']['optim.lr']:.4g} |" in table for r in summary["trials"])
    # the study is resumable: asking for 4 trials runs one more
    search(config, space, out, trials=4, sampler="random", prune=False)
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4


def test_search_grid_prunes_and_runs_every_point(tmp_path: Path) -> None:
    config = write_config(tmp_path, epochs=4)
    # lr 1e-6 learns nothing: pruned once two trials have finished (seed 3 runs it last)
    space = write_space(tmp_path, {"optim.lr": {"choice": [0.05, 0.03, 1.0e-6]}})
    out = tmp_path / "grid"
    summary = search(config, space, out, sampler="grid", seed=3)
    rows = {r["params"]["optim.lr"]: r for r in summary["trials"]}
    assert sorted(rows) == [1.0e-6, 0.03, 0.05]
    assert rows[1.0e-6]["state"] == "pruned" and rows[1.0e-6]["evaluations"] < 4
    assert json.loads((Path(rows[1.0e-6]["run_dir"]) / "run.json").read_text())["status"] == (
        "pruned"
    )


def test_space_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    unknown = write_space(tmp_path, {"model.mapz": {"choice": [2, 4]}})
    with pytest.raises(ConfigError, match=r"space.yaml: model.mapz: unknown config key"):
        search(config, unknown, tmp_path / "s", trials=1)
    with pytest.raises(ConfigError, match="log-float needs low > 0"):
        read_space(write_space(tmp_path, {"optim.lr": {"log-float": [0, 1]}}))
    with pytest.raises(ConfigError, match="unknown distribution 'uniform'"):
        read_space(write_space(tmp_path, {"optim.lr": {"uniform": [0, 1]}}))
    floats = write_space(tmp_path, {"optim.lr": {"float": [0.1, 1]}})
    with pytest.raises(ConfigError, match="grid sampler needs choice or int"):
        search(config, floats, tmp_path / "s", sampler="grid")
    assert override_text("optim.lr", 1e-05) == "optim.lr=1.0e-05"
    assert yaml.safe_load(override_text("optim.lr", 1e-05).split("=")[1]) == 1e-05


def test_learning_and_validation_curve_plots(tmp_path: Path) -> None:
    config = write_config(tmp_path, epochs=1)
    space = write_space(
        tmp_path,
        {"data.train_fraction": {"choice": [0.5, 1.0]}, "trainer.seed": {"choice": [1, 2]}},
    )
    out = tmp_path / "lc"
    search(config, space, out, sampler="grid", prune=False)
    result = runner.invoke(app, ["plot", str(out), "--kind", "learning-curve", "--json"])
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.output.strip().splitlines()[-1])["path"])
    assert path.is_file() and path.stat().st_size > 10_000
    result = runner.invoke(app, ["plot", str(out), "--kind", "validation-curve"])
    assert result.exit_code != 0 and "needs --param" in result.output
    args = ["plot", str(out), "--kind", "validation-curve", "--param", "model.name"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "not a number" in result.output


def test_more_folds_than_examples_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "three.tsv"
    data.write_text("pos\tgood film\nneg\tbad film\npos\tnice\n", encoding="utf-8")
    config = tmp_path / "folds.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "task": "classify",
                "data": {"dataset": str(data), "encoding": "utf-8"},
                "model": CNN,
                "eval": {"metric": "val_acc", "mode": "max", "folds": 5},
            }
        )
    )
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "eval.folds = 5 is more than the 3 examples" in result.output
    result = runner.invoke(
        app,
        [
            "train",
            str(config),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "eval.folds=1",
            "--set",
            "data.val_fraction=0.9",
        ],
    )
    assert result.exit_code == 2 and "leave no training example" in result.output


def test_seed_curves_group_runs_into_recipes_by_their_configs(tmp_path: Path) -> None:
    """Two recipes (batch sizes 4 and 8) over two seeds each: two lines, labelled by the key
    that differs, each the mean of its seeds; the table beside the PNG holds the numbers."""
    config = write_config(tmp_path, epochs=2)
    out = tmp_path / "runs"
    for batch in (4, 8):
        args = ["train", str(config), "--seeds", "1-2", "--out", str(out / f"b{batch}")]
        result = runner.invoke(app, [*args, "--set", f"trainer.batch_size={batch}"])
        assert result.exit_code == 0, result.output
    png = tmp_path / "curves.png"
    args = ["plot", str(out), "--kind", "seed-curves", "--metric", "val_acc", "--out", str(png)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert png.is_file() and png.stat().st_size > 10_000
    table = png.with_suffix(".md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == [
        "| trainer.batch_size=4",
        "| trainer.batch_size=8",
    ]
    logged = [
        json.loads(line)
        for seed in (1, 2)
        for line in (out / "b4" / f"seed_{seed}" / "metrics.jsonl").read_text().splitlines()
    ]
    last = max(r["step"] for r in logged if "val_acc" in r)
    mean = sum(r["val_acc"] for r in logged if r["step"] == last and "val_acc" in r) / 2
    assert f"{last}: {mean:.4g} ± " in table[2]
    result = runner.invoke(app, ["plot", str(out), "--kind", "seed-curves", "--metric", "val_bleu"])
    assert result.exit_code != 0 and "logged 'val_bleu'" in result.output

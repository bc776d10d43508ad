"""Task ``seq_autoencode`` end to end on a tiny file: train, reconstruction table, plot,
predict; the length-binned table on a hand-made case."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.tasks.seq_autoencode import reconstruction_table

runner = CliRunner()
SENTENCES = ["the film is good", "a dull film", "good acting", "the plot is thin and dull"]


def test_reconstruction_table_by_length() -> None:
    sources = [[1, 2], [3, 4, 5], [6, 7, 8, 9]]
    outputs = [[1, 2], [3, 9, 5, 5], [6, 7]]
    bins = reconstruction_table(sources, outputs, [2, 4, 6])
    assert [b["sentences"] for b in bins] == [1, 2, 0]
    assert bins[0]["exact"] == 100.0 and bins[0]["token_acc"] == 100.0
    assert bins[1]["exact"] == 0.0  # [3,9,5,5] has the right words at 2 of 3 places, too long
    assert bins[1]["token_acc"] == pytest.approx(100.0 * (2 + 2) / 7)
    assert math.isnan(bins[2]["exact"])


def test_train_eval_predict_plot(tmp_path: Path) -> None:
    data = tmp_path / "sentences.txt"
    data.write_text("\n".join(SENTENCES * 10) + "\n" + "word " * 40 + "\n", encoding="utf-8")
    cfg = {
        "task": "seq_autoencode",
        "data": {"dataset": str(data), "max_length": 10, "length_bins": [3, 10]},
        "model": {"embedding_size": 16, "hidden_size": 32},
        "optim": {"name": "adam", "lr": 0.02},
        "trainer": {"epochs": 12, "batch_size": 8, "progress": False, "log_every": 0},
        "eval": {"metric": "val_loss", "mode": "min"},
    }
    config = tmp_path / "sa.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    assert metrics["test_exact"] == 100.0 and metrics["test_token_acc"] == 100.0
    report = json.loads((run / "data_report.json").read_text())
    left_out = sum(v for k, v in report.items() if k.endswith("max_length_left_out"))
    assert left_out == 1  # the 40-word line
    table = json.loads((run / "reconstruction_test.json").read_text())
    assert [b["max_length"] for b in table["bins"]] == [3, 10]
    assert sum(b["sentences"] for b in table["bins"]) == report["test_sentences"]
    result = runner.invoke(app, ["plot", str(run), "--kind", "reconstruction", "--json"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.output.strip().splitlines()[-1])["path"]).is_file()
    source = tmp_path / "in.txt"
    source.write_text("a dull film\n")
    result = runner.invoke(app, ["predict", str(run), str(source)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "a dull film\ta dull film"

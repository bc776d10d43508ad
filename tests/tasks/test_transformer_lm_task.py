"""The Transformer LM through lm_rnn's CLI: train, eval with the block loss, generate."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.loader import load_config

runner = CliRunner()
TEXT = "the cat sat on the mat .\nthe dog sat on the log .\n" * 30
REPO = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, **model: object) -> Path:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    cfg = {
        "task": "lm_rnn",
        "data": {
            "dataset": str(corpus),
            "level": "char",
            "bptt": 16,
            "random_offset": True,
            "eval_batch_size": 4,
            "eval_block_size": 16,
        },
        "model": {
            "name": "transformer",
            "d_model": 16,
            "num_heads": 2,
            "num_layers": 1,
            "dim_feedforward": 32,
            "block_size": 16,
        }
        | model,
        "optim": {"name": "adamw", "lr": 0.01},
        "trainer": {"epochs": 2, "batch_size": 4, "progress": False},
        "eval": {"metric": "val_loss", "mode": "min"},
    }
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_json(output: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_transformer_lm_trains_evaluates_and_generates(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config(tmp_path)), "--out", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.stdout)
    assert {"val_loss", "val_bpc", "val_block_loss"} <= set(metrics)
    assert float(metrics["val_loss"]) < 2.0  # from log(16 chars) = 2.77 at the start
    result = runner.invoke(app, ["eval", str(run_dir), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["val_block_loss"] == metrics["val_block_loss"]
    for extra in (["--top-k", "5"], ["--beam", "2"]):
        result = runner.invoke(
            app,
            ["generate", str(run_dir), "--prompt", "the ", "--max-tokens", "40", *extra, "--json"],
        )
        assert result.exit_code == 0, result.output
        text = str(last_json(result.stdout)["text"])
        assert text.startswith("the ") and len(text) == 44  # past block_size (16)


def test_window_longer_than_block_size_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["train", str(config(tmp_path, block_size=8)), "--out", str(tmp_path / "run")],
    )
    assert result.exit_code != 0
    assert "longer than model.block_size=8" in result.output
    assert "Traceback" not in result.output


def test_shipped_config_is_the_transformer_beside_the_lstm() -> None:
    cfg = load_config(REPO / "configs" / "shakespeare_char_transformer.yaml")
    lstm = load_config(REPO / "configs" / "shakespeare_char.yaml")
    assert cfg.model.name == "transformer" and lstm.model.name == "rnn"
    assert cfg.data.bptt <= cfg.model.block_size == cfg.data.eval_block_size == 256
    assert (cfg.data.dataset, cfg.data.val_fraction) == (lstm.data.dataset, lstm.data.val_fraction)

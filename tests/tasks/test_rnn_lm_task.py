"""lm_rnn through the CLI: train, eval (--data), generate, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.evaluation import LoadedRun
from seqlab.tasks.rnn_lm import block_loss

runner = CliRunner()
TEXT = "the cat sat on the mat .\nthe dog sat on the log .\n" * 30


def config(tmp_path: Path, level: str = "char", **data: object) -> Path:
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        corpus.write_text(TEXT)
    cfg = {
        "task": "lm_rnn",
        "data": {"dataset": str(corpus), "level": level, "bptt": 8, "eval_batch_size": 2} | data,
        "model": {
            "name": "rnn",
            "cell": "lstm",
            "embedding_size": 16,
            "hidden_size": 16,
            "num_layers": 1,
        },
        "optim": {"name": "adam", "lr": 0.01},
        "trainer": {"epochs": 2, "batch_size": 4, "progress": False},
        "eval": {"metric": "val_loss", "mode": "min"},
    }
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_json(output: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_char_lm_round_trip_and_errors(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config(tmp_path)), "--out", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.stdout)
    assert {"val_loss", "val_ppl", "val_bpc"} <= set(metrics)
    result = runner.invoke(
        app,
        [
            "generate",
            str(run_dir),
            "--prompt",
            "the ",
            "--max-tokens",
            "20",
            "--top-k",
            "5",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert str(last_json(result.stdout)["text"]).startswith("the ")
    result = runner.invoke(
        app,
        ["generate", str(run_dir), "--prompt", "the", "--beam", "3", "--max-tokens", "5", "--json"],
    )
    assert result.exit_code == 0, result.output
    for extra in ([], ["--fresh"]):
        out = tmp_path / f"gf{len(extra)}.png"
        result = runner.invoke(
            app, ["plot", str(run_dir), "--kind", "gradient-flow", "--out", str(out), *extra]
        )
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[:4] == b"\x89PNG"
    bad = runner.invoke(app, ["plot", str(run_dir), "--kind", "curves", "--fresh"])
    assert bad.exit_code == 2 and "does not take --fresh" in bad.stderr
    bad = runner.invoke(app, ["generate", str(run_dir), "--prompt", "QUX"])
    assert bad.exit_code == 2 and "'QUX'" in bad.stderr and "vocabulary" in bad.stderr
    other = tmp_path / "other.txt"
    other.write_text("ZZZ\n")
    bad = runner.invoke(app, ["eval", str(run_dir), "--data", str(other)])
    assert bad.exit_code == 2 and "other.txt" in bad.stderr


def test_word_lm_counts_oov_at_eval(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(config(tmp_path, level="word")), "--out", str(run_dir)]
    )
    assert result.exit_code == 0, result.output
    other = tmp_path / "other.txt"
    other.write_text("the zebra sat on the mat .\n" * 5)
    result = runner.invoke(app, ["eval", str(run_dir), "--data", str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["test_oov"] == 5.0


def test_bptt_longer_than_corpus(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", str(config(tmp_path, bptt=100000)), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "bptt=100000 is longer than the corpus" in result.stderr
    assert not (tmp_path / "run").exists()


def test_binary_and_empty_corpus(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "corpus.txt").write_bytes(b"\x00\x01\x02binary\x00" * 10)
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "corpus.txt" in result.stderr
    (tmp_path / "corpus.txt").write_text("   \n\n")
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "empty" in result.stderr


def test_eval_set_block_size_scores_a_finished_run_like_nanogpt(tmp_path: Path) -> None:
    """`seqlab eval RUN --set data.eval_block_size=N` on a run trained without it adds
    ``val_block_loss`` (fresh state per block) and leaves the carried-state loss alone."""
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config(tmp_path)), "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    plain = runner.invoke(app, ["eval", str(run_dir), "--split", "val", "--json"])
    assert plain.exit_code == 0, plain.output
    assert "val_block_loss" not in last_json(plain.stdout)
    args = ["eval", str(run_dir), "--split", "val", "--set", "data.eval_block_size=6", "--json"]
    blocked = runner.invoke(app, args)
    assert blocked.exit_code == 0, blocked.output
    metrics = last_json(blocked.stdout)
    assert metrics["val_loss"] == last_json(plain.stdout)["val_loss"]
    run = LoadedRun.load(run_dir)
    expected = block_loss(run.model, run.data.splits["val"], 6, 2)
    assert metrics["val_block_loss"] == pytest.approx(expected, rel=1e-6)
    assert metrics["val_block_loss"] != pytest.approx(metrics["val_loss"], rel=1e-4)

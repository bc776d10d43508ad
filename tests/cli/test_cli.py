"""The CLI contract: run dirs, --json, resume, and one-line errors that damage nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

import seqlab
from seqlab.cli import app
from seqlab.train.device import fallback_device

runner = CliRunner()

POS = [
    "a fine , moving film",
    "great acting and a warm story",
    "funny and wise",
    "a joy to watch",
    "beautiful , touching work",
    "smart and lovely",
]
NEG = [
    "a dull , tired mess",
    "bad acting and a cold story",
    "boring and stupid",
    "a chore to watch",
    "ugly , lifeless work",
    "dumb and tedious",
]


def labelled_file(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.tsv"
    lines = [f"pos\t{t}" for t in POS] + [f"neg\t{t}" for t in NEG]
    path.write_text("\n".join(lines * 5) + "\n", encoding="utf-8")
    return path


def bow_config(tmp_path: Path, **model: object) -> Path:
    cfg = {
        "task": "bow_classify",
        "data": {
            "dataset": str(labelled_file(tmp_path)),
            "encoding": "utf-8",
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
        "model": {"name": "mlp", "hidden_size": 8} | model,
        "optim": {"name": "adam", "lr": 0.01},
        "trainer": {"epochs": 3, "batch_size": 8, "progress": False},
        "eval": {"metric": "val_acc", "mode": "max"},
    }
    path = tmp_path / "bow.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def char_config(tmp_path: Path) -> Path:
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question.\n" * 40, encoding="utf-8")
    cfg = {
        "task": "lm_char_mlp",
        "data": {"dataset": str(text)},
        "model": {"name": "mlp", "context": 4, "embedding_size": 8, "hidden_size": 32},
        "optim": {"name": "adam", "lr": 0.01},
        "trainer": {"epochs": 2, "batch_size": 64, "progress": False},
    }
    path = tmp_path / "char.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_json(output: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def snapshot(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def test_train_eval_predict_plot(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(bow_config(tmp_path)), "--out", str(run_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = last_json(result.stdout)
    assert {"val_acc", "test_acc", "test_loss"} <= set(metrics)
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "metrics.json",
        "checkpoint.pt",
        "best.safetensors",
        "vocab.json",
    ):
        assert (run_dir / name).is_file(), name
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3

    result = runner.invoke(app, ["eval", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["test_acc"] == pytest.approx(metrics["test_acc"])
    before = torch.get_num_threads()
    try:  # --threads sets torch's threads (a finished run refuses --set trainer.threads)
        result = runner.invoke(app, ["eval", str(run_dir), "--threads", "1", "--json"])
        assert result.exit_code == 0 and torch.get_num_threads() == 1, result.output
    finally:
        torch.set_num_threads(before)
    assert last_json(result.stdout)["test_acc"] == pytest.approx(metrics["test_acc"])
    refused = runner.invoke(app, ["eval", str(run_dir), "--set", "trainer.threads=1"])
    assert refused.exit_code != 0 and "--threads" in refused.output

    inputs = tmp_path / "in.txt"
    inputs.write_text("a warm and funny film\na dull and stupid chore\n")
    result = runner.invoke(app, ["predict", str(run_dir), str(inputs)])
    assert result.exit_code == 0, result.output
    labels = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert labels == ["pos", "neg"]

    result = runner.invoke(app, ["plot", str(run_dir), "--kind", "curves"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_existing_run_is_refused_and_untouched(tmp_path: Path) -> None:
    config = bow_config(tmp_path)
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", str(config), "--out", str(run_dir)]).exit_code == 0
    before = snapshot(run_dir)
    result = runner.invoke(app, ["train", str(config), "--out", str(run_dir)])
    assert result.exit_code == 2
    assert "already holds a run" in result.stderr and "--resume" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(run_dir) == before
    result = runner.invoke(app, ["train", str(config), "--out", str(run_dir), "--force"])
    assert result.exit_code == 0


def test_resume_extends_training(tmp_path: Path) -> None:
    config = bow_config(tmp_path)
    run_dir = tmp_path / "run"
    assert (
        runner.invoke(
            app, ["train", str(config), "--out", str(run_dir), "--set", "trainer.max_steps=4"]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app,
        ["train", "--resume", "--out", str(run_dir), "--json", "--set", "trainer.max_steps=null"],
    )
    assert result.exit_code == 0, result.output
    steps = [json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[0] == 4 and steps[-1] > 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "trainer.epoch=3"],
            "unknown config key 'trainer.epoch'; did you mean 'trainer.epochs'",
        ),
        (["--set", "model.name=mpl"], "did you mean 'mlp'"),
        (["--set", "data.dataset=no_such_dataset"], "no_such_dataset"),
        (["--set", "trainer.epochs=lots"], "trainer.epochs"),
        (["--set", "optim.lr=-5"], "optim.lr must be > 0, got -5.0"),
        (["--set", "optim.betas=[0.9,1]"], "optim.betas[1] must be in [0, 1), got 1.0"),
        (["--set", "trainer.device=gpu"], "trainer.device must be cpu, cuda, cuda:N"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(bow_config(tmp_path)), "--out", str(run_dir), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible here")
def test_missing_gpu_is_one_clear_line_before_data_is_read(tmp_path: Path) -> None:
    config = bow_config(tmp_path)
    (tmp_path / "reviews.tsv").unlink()  # data set-up would fail with another message
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(config), "--out", str(run_dir), "--set", "trainer.device=cuda"]
    )
    assert result.exit_code == 2, result.output
    expected = "trainer.device is 'cuda' but no CUDA GPU is visible"
    assert expected in result.stderr and f"use trainer.device={fallback_device()}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible here")
def test_resuming_a_gpu_run_without_a_gpu_is_one_clear_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["train", str(bow_config(tmp_path)), "--out", str(run_dir), "--set"]
    assert runner.invoke(app, [*args, "trainer.max_steps=2"]).exit_code == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    saved["trainer"]["device"] = "cuda:0"  # as if trained on a GPU machine
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    before = snapshot(run_dir)
    result = runner.invoke(app, ["train", "--resume", "--out", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert f"{run_dir / 'config.yaml'}: a run resumes on its own device" in result.stderr
    assert "'cuda:0' but no CUDA GPU is visible" in result.stderr
    assert snapshot(run_dir) == before


def test_wrong_encoding_names_file_and_line(tmp_path: Path) -> None:
    config = bow_config(tmp_path)
    data = tmp_path / "reviews.tsv"
    data.write_bytes(data.read_bytes() + "pos\tcaf\xe9 au lait\n".encode("cp1252"))
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "reviews.tsv:61" in result.stderr and "cp1252" in result.stderr


def test_empty_corpus_and_missing_file(tmp_path: Path) -> None:
    config = char_config(tmp_path)
    (tmp_path / "text.txt").write_text("")
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "empty" in result.stderr
    (tmp_path / "text.txt").unlink()
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "text.txt" in result.stderr
    assert "Traceback" not in result.output


def test_label_mismatch_at_eval(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert (
        runner.invoke(app, ["train", str(bow_config(tmp_path)), "--out", str(run_dir)]).exit_code
        == 0
    )
    other = tmp_path / "other.tsv"
    other.write_text("pos\tgood film\nmeh\tso so film\n")
    result = runner.invoke(app, ["eval", str(run_dir), "--data", str(other)])
    assert result.exit_code == 2
    assert "'meh'" in result.stderr and "other.tsv" in result.stderr


def test_nan_loss_is_one_clear_line(tmp_path: Path) -> None:
    config = bow_config(tmp_path)
    result = runner.invoke(
        app,
        [
            "train",
            str(config),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "optim.name=sgd",
            "--set",
            "optim.lr=1e38",
        ],
    )
    assert result.exit_code == 3, result.output
    assert "loss became" in result.stderr and "optim.lr" in result.stderr
    assert "Traceback" not in result.output


def test_char_lm_generate_and_vocab_errors(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(char_config(tmp_path)), "--out", str(run_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = last_json(result.stdout)
    assert float(metrics["val_bpc"]) < 2.0  # the text is a repeated line
    gen = runner.invoke(
        app,
        [
            "generate",
            str(run_dir),
            "--prompt",
            "to be",
            "--max-tokens",
            "30",
            "--seed",
            "1",
            "--json",
        ],
    )
    assert gen.exit_code == 0, gen.output
    text = str(last_json(gen.stdout)["text"])
    assert text.startswith("to be") and len(text) == 35
    again = runner.invoke(
        app,
        [
            "generate",
            str(run_dir),
            "--prompt",
            "to be",
            "--max-tokens",
            "30",
            "--seed",
            "1",
            "--json",
        ],
    )
    assert last_json(again.stdout)["text"] == text
    bad = runner.invoke(app, ["generate", str(run_dir), "--prompt", "Zebra"])
    assert bad.exit_code == 2 and "'Z'" in bad.stderr
    other = tmp_path / "other.txt"
    other.write_text("QQQ xyz\n" * 10)
    bad = runner.invoke(app, ["eval", str(run_dir), "--data", str(other)])
    assert bad.exit_code == 2 and "other.txt" in bad.stderr and "vocabulary" in bad.stderr


def test_not_a_run_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(tmp_path)])
    assert result.exit_code == 2 and "not a run dir" in result.stderr


def test_cross_validated_run_evaluates_and_predicts(tmp_path: Path) -> None:
    run_dir = tmp_path / "cv"
    result = runner.invoke(
        app,
        [
            "train",
            str(bow_config(tmp_path)),
            "--out",
            str(run_dir),
            "--set",
            "eval.folds=3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = last_json(result.stdout)
    assert metrics["folds"] == 3 and "test_acc_std" in metrics
    assert [p.name for p in sorted(run_dir.glob("fold*"))] == ["fold0", "fold1", "fold2"]
    result = runner.invoke(app, ["eval", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["test_acc"] == pytest.approx(metrics["test_acc"])
    result = runner.invoke(app, ["predict", str(run_dir)], input="a warm and funny film\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\t")[0] in ("pos", "neg")


def test_second_training_in_a_run_dir_is_refused_naming_the_first(tmp_path: Path) -> None:
    """Two real ``seqlab train`` processes: the second one into the same run dir (fresh or
    ``--resume``) exits 2 naming the first; once the first is killed (SIGKILL: no clean-up
    runs), the run dir is free again."""
    config, run_dir = bow_config(tmp_path), tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(seqlab.__file__).parents[1])}
    first = subprocess.Popen(
        [sys.executable, "-m", "seqlab.cli", "train", str(config), "--out", str(run_dir)]
        + ["--set", "trainer.epochs=1000000"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    holder = f"pid {first.pid} on {socket.gethostname()}"
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoint.pt").exists():  # it holds the lock and is training
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert (run_dir / ".lock").read_text().startswith(holder)
        for args in (["--resume"], [str(config), "--force"]):
            result = runner.invoke(app, ["train", *args, "--out", str(run_dir)])
            assert result.exit_code == 2, result.output
            assert "another process is training in this run dir" in result.stderr
            assert holder in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert first.poll() is None  # the refused runs did not disturb it
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    result = runner.invoke(
        app, ["train", "--resume", "--out", str(run_dir), "--set", "trainer.epochs=1"]
    )
    assert result.exit_code == 0, result.output


class OpensAFile:
    """Unpickling this runs ``open(marker, "w")``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_resuming_from_a_crafted_checkpoint_runs_no_code(tmp_path: Path) -> None:
    run_dir, marker = tmp_path / "run", tmp_path / "pwned"
    result = runner.invoke(
        app,
        ["train", str(bow_config(tmp_path)), "--out", str(run_dir), "--set", "trainer.epochs=1"],
    )
    assert result.exit_code == 0, result.output
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state["rng"]["python"] = OpensAFile(marker)
    torch.save(state, run_dir / "checkpoint.pt")
    result = runner.invoke(
        app, ["train", "--resume", "--out", str(run_dir), "--set", "trainer.epochs=2"]
    )
    assert result.exit_code == 2, result.output
    assert f"{run_dir / 'checkpoint.pt'}: checkpoint refused" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()

"""Distillation in the ``classify`` task: a teacher run's soft targets train a student."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.nn.distill import UNLABELLED, soften
from seqlab.tasks import TASKS
from seqlab.tasks.distill import teacher_probs

runner = CliRunner()
POS = ["a fine moving film", "great acting", "funny and wise", "a joy", "smart and lovely"]
NEG = ["a dull tired mess", "bad acting", "boring and stupid", "a chore", "dumb and tedious"]


def write(tmp_path: Path, name: str, model: dict[str, object], **data: object) -> Path:
    reviews = tmp_path / "reviews.tsv"
    lines = [f"pos\t{t}" for t in POS] + [f"neg\t{t}" for t in NEG]
    reviews.write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    cfg = {
        "task": "classify",
        "data": {"dataset": str(reviews), "encoding": "utf-8", "val_fraction": 0.2} | data,
        "model": model,
        "optim": {"name": "adam", "lr": 0.01},
        "trainer": {"epochs": 3, "batch_size": 8, "progress": False, "log_every": 0},
        "eval": {"metric": "val_acc", "mode": "max"},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


TEACHER = {"name": "rnn", "embedding_size": 8, "hidden_size": 8, "dropout": 0.0}
STUDENT = {"name": "cnn", "embedding_size": 8, "maps": 4, "widths": [1, 2], "dropout": 0.0}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("teacher")
    run = tmp_path / "teacher"
    result = runner.invoke(app, ["train", str(write(tmp_path, "t", TEACHER)), "--out", str(run)])
    assert result.exit_code == 0, result.output
    return run


def test_student_learns_from_the_teachers_soft_targets(
    teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlabelled = tmp_path / "more.txt"
    unlabelled.write_text("a lovely joy\nstupid and dull\n\n", encoding="utf-8")
    config = write(
        tmp_path,
        "s",
        STUDENT,
        teachers=[str(teacher), str(teacher)],
        temperature=3.0,
        alpha=0.7,
        unlabelled=str(unlabelled),
    )
    cfg = load_config(config)
    task = TASKS.get("classify")
    data = task.setup(cfg, tmp_path / "student_setup", train=True)
    tokens, labels = data.splits["train"]
    assert labels[-2:] == [UNLABELLED, UNLABELLED] and tokens[-1] == ["stupid", "and", "dull"]
    assert "lovely" in data.vocab  # unlabelled text is in the student's vocabulary
    # the soft targets are the teacher's softmax(logits / T) (an ensemble of one, twice)
    teacher_model, teacher_data = task.load_trained(load_config(teacher / "config.yaml"), teacher)
    batch = task.make_batch(cfg, teacher_data, tokens[-1:], [0])
    with torch.no_grad():
        expected = soften(teacher_model.logits(batch), 3.0)[0]
    assert data.soft is None  # the teachers run at the first training batch, not before
    soft = task.soft_targets(cfg, data)
    assert soft is not None and data.soft is soft
    torch.testing.assert_close(soft[-1], expected)
    batches = list(task.train_batches(cfg, data, 0))
    assert all(b.soft is not None and b.soft.temperature == 3.0 for b in batches)
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    assert "val_acc" in json.loads(result.output.strip().splitlines()[-1])
    report = json.loads((tmp_path / "s" / "data_report.json").read_text())
    assert report["train_unlabelled"] == 2

    def no_teacher(*args: object) -> None:
        raise AssertionError("evaluating the student ran a teacher")

    monkeypatch.setattr("seqlab.tasks.distill._teacher_logits", no_teacher)
    result = runner.invoke(app, ["eval", str(tmp_path / "s"), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output


def test_teacher_errors(teacher: Path, tmp_path: Path) -> None:
    task = TASKS.get("classify")
    cfg = load_config(write(tmp_path, "s", STUDENT, teachers=[str(tmp_path)]))
    with pytest.raises(ConfigError, match="not a finished run dir"):
        task.setup(cfg, tmp_path / "s1", train=True)
    with pytest.raises(ConfigError, match="data.unlabelled needs data.teachers"):
        unlabelled = load_config(write(tmp_path, "s", STUDENT, unlabelled="x.txt"))
        task.setup(unlabelled, tmp_path / "s0", train=True)
    labels = json.loads((teacher / "labels.json").read_text())
    relabelled = tmp_path / "relabelled"
    relabelled.mkdir()
    for name in ("config.yaml", "best.safetensors", "vocab.json"):
        (relabelled / name).write_bytes((teacher / name).read_bytes())
    (relabelled / "labels.json").write_text(json.dumps([*labels[::-1]]))
    cfg = load_config(write(tmp_path, "s", STUDENT, teachers=[str(relabelled)]))
    with pytest.raises(ConfigError, match="has labels"):
        task.setup(cfg, tmp_path / "s2", train=True)


def test_teacher_runs_once_per_token_set_and_again_when_retrained(
    teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search over T (or several seeds) in one process runs the teacher once; the soft
    targets at each T are still softmax(logits / T) of that one run."""
    task = TASKS.get("classify")
    copy = tmp_path / "teacher_copy"  # a run dir of its own, so no other test shares the cache
    copy.mkdir()
    for path in teacher.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    loads = []
    real = type(task).load_trained
    monkeypatch.setattr(
        type(task), "load_trained", lambda self, *a, **k: loads.append(1) or real(self, *a, **k)
    )
    tokens = [["a", "joy"], ["bad", "acting"]]
    labels = json.loads((copy / "labels.json").read_text())
    cold = teacher_probs(task, [str(copy)], tokens, labels, 1.0, "cpu")
    warm = teacher_probs(task, [str(copy)], tokens, labels, 4.0, "cpu")
    assert len(loads) == 1
    torch.testing.assert_close(warm, soften(torch.log(cold), 4.0))  # same logits, up to a shift
    weights = copy / "best.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    teacher_probs(task, [str(copy)], tokens, labels, 4.0, "cpu")
    assert len(loads) == 2  # new weights: the teacher runs again

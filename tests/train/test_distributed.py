"""Multi-process training (DDP, gloo, 2 CPU processes): the loss trajectory equals one
process with the same global batch, resume continues exactly; how batches are split."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from seqlab.config import ExperimentConfig
from seqlab.errors import ConfigError
from seqlab.loader import from_dict
from seqlab.runs import train
from seqlab.train import distributed
from seqlab.train.distributed import Context, rank_batch_size, rank_batches

TEXT = "the cat sat on the mat .\nthe dog sat on the log .\n" * 30


def lm_config(corpus: Path, steps: int) -> ExperimentConfig:
    """A char LSTM LM: its batches are streams, split by rows (``LMBatch.shard``)."""
    return from_dict(
        {
            "task": "lm_rnn",
            "data": {"dataset": str(corpus), "level": "char", "bptt": 8, "eval_batch_size": 2},
            "model": {"name": "rnn", "embedding_size": 16, "hidden_size": 16, "num_layers": 1},
            "optim": {"name": "adam", "lr": 0.01},
            "trainer": {
                "epochs": 1,
                "batch_size": 4,
                "max_steps": steps,
                "eval_every": 1,
                "progress": False,
                "threads": 1,
            },
            "eval": {"metric": "val_loss", "mode": "min"},
        }
    )


def mlp_config(corpus: Path) -> ExperimentConfig:
    """A char MLP LM: shuffled windows cut into batches, split batch by batch."""
    return from_dict(
        {
            "task": "lm_char_mlp",
            "data": {"dataset": str(corpus), "val_fraction": 0.2},
            "model": {
                "name": "mlp",
                "context": 4,
                "embedding_size": 8,
                "hidden_size": 16,
                "dropout": 0.0,
            },
            "optim": {"name": "sgd", "lr": 0.5, "momentum": 0.9},
            "trainer": {
                "epochs": 1,
                "batch_size": 64,
                "max_steps": 5,
                "eval_every": 1,
                "progress": False,
                "threads": 1,
            },
            "eval": {"metric": "val_loss", "mode": "min"},
        }
    )


def adversarial_config(tmp: Path) -> ExperimentConfig:
    """A CNN sentence classifier with adversarial training on its word embeddings (AT),
    no dropout."""
    data = tmp / "reviews.tsv"
    if not data.is_file():
        good, bad = ["a fine film", "great and moving", "a joy"], ["dull", "a tired mess", "bad"]
        lines = [f"pos\t{t} {u}" for t in good for u in good] + [
            f"neg\t{t} {u}" for t in bad for u in bad
        ]
        data.write_text("\n".join(lines * 3) + "\n")
    return from_dict(
        {
            "task": "classify",
            "data": {"dataset": str(data), "encoding": "utf-8"},
            "model": {"name": "cnn", "embedding_size": 8, "maps": 4, "widths": [1, 2]}
            | {"dropout": 0.0},
            "optim": {"name": "adam", "lr": 0.01, "adversarial": {"kind": "at", "epsilon": 0.5}},
            "trainer": {
                "epochs": 2,
                "batch_size": 8,
                "max_steps": 5,
                "eval_every": 1,
                "progress": False,
                "threads": 1,
            },
            "eval": {"metric": "val_loss", "mode": "min", "test": False},
        }
    )


def records(run_dir: Path) -> list[tuple[int, float, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["train_loss"], r["val_loss"]) for r in map(json.loads, lines)]


def _worker(tmp: Path) -> None:
    """Both processes: one process group, then three runs in it (rank 0 writes them)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        corpus = tmp / "corpus.txt"
        train(lm_config(corpus, 4), tmp / "ddp_lm")
        train(lm_config(corpus, 2), tmp / "ddp_lm_resumed")  # stops mid-epoch ...
        train(lm_config(corpus, 4), tmp / "ddp_lm_resumed", resume=True)  # ... and goes on
        train(mlp_config(corpus), tmp / "ddp_mlp")
        train(adversarial_config(tmp), tmp / "ddp_at")
    finally:
        distributed.shutdown()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ddp")
    corpus = tmp / "corpus.txt"
    corpus.write_text(TEXT)
    os.environ.pop("WORLD_SIZE", None)
    distributed.spawn(2, _worker, tmp)
    train(lm_config(corpus, 4), tmp / "one_lm")
    train(mlp_config(corpus), tmp / "one_mlp")
    # two processes at batch 8 draw what one process draws at batch 4, two per step
    one_at = adversarial_config(tmp)
    halves = dataclasses.replace(one_at.trainer, batch_size=4, accumulate=2)
    train(one_at.replace(trainer=halves), tmp / "one_at")
    return tmp


def assert_same(ours: list[tuple[int, float, float]], theirs: list[tuple[int, float, float]]):
    assert [r[0] for r in ours] == [r[0] for r in theirs]
    for (_, train_a, val_a), (_, train_b, val_b) in zip(ours, theirs, strict=True):
        assert train_a == pytest.approx(train_b, abs=1e-5)
        assert val_a == pytest.approx(val_b, abs=1e-5)


def test_two_processes_follow_one_process(runs: Path) -> None:
    one = records(runs / "one_lm")
    assert len(one) == 4 and one[0][2] > one[-1][2] + 0.05  # it learns: a real trajectory
    assert_same(records(runs / "ddp_lm"), one)  # rows of stream batches
    mlp = records(runs / "one_mlp")
    assert len(mlp) == 5 and mlp[0][2] != mlp[-1][2]
    assert_same(records(runs / "ddp_mlp"), mlp)  # whole batches, one in turn to each
    adversarial = records(runs / "one_at")  # the adversarial term goes through DDP too
    assert len(adversarial) == 5 and adversarial[0][2] != adversarial[-1][2]
    assert_same(records(runs / "ddp_at"), adversarial)
    state = torch.load(runs / "ddp_lm" / "checkpoint.pt", weights_only=True)
    assert state["state"]["world"] == 2 and len(state["ranks"]) == 2
    assert json.loads((runs / "ddp_lm" / "metrics.json").read_text())["steps"] == 4.0


def test_resume_in_two_processes(runs: Path) -> None:
    resumed, one = records(runs / "ddp_lm_resumed"), records(runs / "one_lm")
    assert [r[0] for r in resumed] == [1, 2, 3, 4]
    assert_same(resumed[:2], one[:2])
    # the weights go on exactly (train_loss restarts its running mean at a resume)
    for (_, _, val_a), (_, _, val_b) in zip(resumed[2:], one[2:], strict=True):
        assert val_a == pytest.approx(val_b, abs=1e-5)


def test_resume_needs_the_same_number_of_processes(runs: Path) -> None:
    cfg = lm_config(runs / "corpus.txt", 6)
    with pytest.raises(ConfigError, match=r"trained by 2 process\(es\), not 1; .*--nproc 2"):
        train(cfg, runs / "ddp_lm", resume=True)


def test_rank_batches_deal_whole_batches_in_turn() -> None:
    small = list(range(7))  # seven per-process batches: the last global batch is short
    parts = [list(rank_batches(lambda: [100], lambda: small, Context(r, 3))) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4, None], [2, 5, None]]


class Rows:
    def __init__(self, rows: list[int]) -> None:
        self.rows = rows

    def shard(self, rank: int, world: int) -> Any:
        size = len(self.rows) // world
        return self.rows[rank * size : (rank + 1) * size]


def test_rank_batches_cut_shardable_batches() -> None:
    full = [Rows([0, 1, 2, 3]), Rows([4, 5, 6, 7])]
    got = list(rank_batches(lambda: full, lambda: [], Context(1, 2)))
    assert got == [[2, 3], [6, 7]]


def test_global_batch_must_divide() -> None:
    assert rank_batch_size(32, 4) == 8
    with pytest.raises(ConfigError, match=r"trainer.batch_size \(30\) is the global batch"):
        rank_batch_size(30, 4)


def test_what_a_process_group_cannot_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")  # checked before any process group is joined
    cfg = lm_config(tmp_path / "corpus.txt", 2)
    for task, message in (("lm_ngram", "fitted by its own algorithm"), ("ae_bow", "in stages")):
        with pytest.raises(ConfigError, match=message):
            train(cfg.replace(task=task), tmp_path / task)
    folds = cfg.replace(eval=dataclasses.replace(cfg.eval, folds=2))
    with pytest.raises(ConfigError, match="cross-validation"):
        train(folds, tmp_path / "cv")

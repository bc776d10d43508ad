"""Task ``classify`` end to end on tiny files: CLI train (k folds)/eval/predict, SST loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.embeddings.vectors_io import WordVectors, save_word2vec
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.tasks import TASKS
from seqlab.tasks.sentence_classify import ClassifyDataConfig, SentenceClassifyTask, load_sst

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
POS = ["a fine moving film", "great acting", "funny and wise", "a joy", "smart and lovely"]
NEG = ["a dull tired mess", "bad acting", "boring and stupid", "a chore", "dumb and tedious"]


@pytest.fixture(autouse=True)
def register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS._items, "classify", SentenceClassifyTask())


def write_config(tmp_path: Path, model: dict[str, object], folds: int = 1, copies: int = 4) -> Path:
    """The 10 sentences ``copies`` times each (k-fold tests need enough copies that every
    test sentence has one in training: the sentences share too few words to generalise)."""
    data = tmp_path / "reviews.tsv"
    lines = [f"pos\t{t}" for t in POS] + [f"neg\t{t}" for t in NEG]
    data.write_text("\n".join(lines * copies) + "\n\n\n", encoding="utf-8")  # 2 empty lines
    cfg = {
        "task": "classify",
        "data": {
            "dataset": str(data),
            "encoding": "utf-8",
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
        "model": model,
        "optim": {"name": "adam", "lr": 0.01},
        "trainer": {"epochs": 10, "batch_size": 8, "progress": False},
        "eval": {"metric": "val_acc", "mode": "max", "folds": folds},
    }
    path = tmp_path / "cls.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_json(output: str) -> dict[str, float]:
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def test_cnn_cross_validation_eval_predict(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        {"name": "cnn", "embedding_size": 16, "maps": 8, "widths": [1, 2], "dropout": 0.0},
        folds=2,
        copies=8,
    )
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(cfg), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    assert metrics["folds"] == 2 and metrics["test_acc"] >= 80.0
    report = json.loads((run / "fold0" / "data_report.json").read_text())
    assert report["empty_lines_left_out"] == 2  # counted, not silently dropped
    result = runner.invoke(app, ["eval", str(run), "--json"])
    assert result.exit_code == 0 and "test_acc_std" in last_json(result.output)
    source = tmp_path / "in.txt"
    source.write_text("great and lovely\nboring mess\n")
    result = runner.invoke(app, ["predict", str(run), str(source)])
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.output.splitlines()] == ["pos", "neg"]


def test_rnn_attention_trains(tmp_path: Path) -> None:
    model = {"name": "rnn", "embedding_size": 8, "hidden_size": 8, "pooling": "attention"}
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(write_config(tmp_path, model)), "--out", str(run), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert last_json(result.output)["val_acc"] >= 0.0


def test_multichannel_keeps_its_static_channel_frozen(tmp_path: Path) -> None:
    words = ["great", "boring", "acting", "a"]
    vectors = np.random.default_rng(0).normal(size=(len(words), 16)).astype(np.float32)
    path = save_word2vec(WordVectors(words, vectors), tmp_path / "v.bin", binary=True)
    model = {"name": "cnn", "variant": "multichannel", "vectors": str(path)}
    model |= {"embedding_size": 16, "maps": 8, "widths": [1, 2], "dropout": 0.0}
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(write_config(tmp_path, model)), "--out", str(run), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "pretrained vectors for 4/" in result.output and "missing: " in result.output
    assert len(result.output) < 5000  # a summary line, not every missing word
    itos = json.loads((run / "vocab.json").read_text())["itos"]
    weights = load_file(run / "best.safetensors")
    rows = [itos.index(w) for w in words]
    assert torch.equal(weights["static_embedding.weight"][rows], torch.from_numpy(vectors))
    assert not torch.equal(weights["embedding.weight"][rows], torch.from_numpy(vectors))


def test_sst_phrases_and_binary_labels(shared_data: Path) -> None:
    report: dict[str, int] = {}
    binary = ClassifyDataConfig(labels="binary", phrases=True)
    splits = load_sst(binary, report, ("val", "test"))
    tokens, labels = splits["test"]
    assert len(tokens) == 1821 and set(labels) == {0, 1}  # 2,210 - 389 neutral
    assert report["test_neutral_left_out"] == 389
    assert len(splits["val"][0]) == 872  # dev sentences only, even with phrases: true
    fine = load_sst(ClassifyDataConfig(labels="fine"), {}, ("test",))
    assert len(fine["test"][0]) == 2210 and set(fine["test"][1]) == {0, 1, 2, 3, 4}


def test_configs_load_and_sst_refuses_folds() -> None:
    for name in (
        "sst2_cnn_rand",
        "sst1_cnn_rand",
        "mr_cnn_rand",
        "sst2_bilstm",
        "sst2_cnn_nonstatic",
        "sst2_cnn_static",
        "sst2_cnn_multichannel",
        "sst1_cnn_nonstatic",
    ):
        cfg = load_config(REPO / "configs" / f"{name}.yaml")
        assert cfg.task == "classify"
    cfg = load_config(REPO / "configs" / "sst2_cnn_rand.yaml", ["eval.folds=2"])
    with pytest.raises(ConfigError, match="fixed train/dev/test"):
        SentenceClassifyTask().setup(cfg, Path("."), train=True)


@pytest.mark.parametrize("batching", ["bucket", "random"])
def test_training_batches_bucketed_or_random(batching: str) -> None:
    from collections import Counter

    from seqlab.data.vocab import Vocab
    from seqlab.tasks.sentence_classify import ClassifyData

    lengths = [1 + i % 40 for i in range(400)]
    tokens = [["w"] * n for n in lengths]
    labels = list(range(400))  # the label names the example
    data = ClassifyData(Vocab.from_counter(Counter(["w"])), ["a"], {"train": (tokens, labels)}, {})
    cfg = load_config(
        REPO / "configs" / "sst1_cnn_rand.yaml",
        ["trainer.batch_size=20", f"data.batching={batching}"],
    )
    batches = list(SentenceClassifyTask().train_batches(cfg, data, epoch=1))
    seen = sorted(i for b in batches for i in b.labels.tolist())
    assert seen == labels  # every example once per epoch
    spreads = [
        max(lengths[i] for i in b.labels.tolist()) - min(lengths[i] for i in b.labels.tolist())
        for b in batches
    ]
    if batching == "bucket":
        assert max(spreads) <= 2  # one bucket of 400, sorted by length
    else:
        assert sum(spreads) / len(spreads) > 25  # 20 lengths drawn from 1..40


def test_eval_set_on_a_cross_validated_run_evaluates_every_fold(tmp_path: Path) -> None:
    """`seqlab eval RUN --set ...` summarises all folds of a k-fold run, as plain eval does
    (it used to evaluate fold 0 alone), and the override acts: a bad value is refused."""
    model = {"name": "cnn", "embedding_size": 16, "maps": 8, "widths": [1, 2], "dropout": 0.0}
    run = tmp_path / "run"
    cfg = write_config(tmp_path, model, folds=2, copies=8)
    assert runner.invoke(app, ["train", str(cfg), "--out", str(run)]).exit_code == 0
    plain = runner.invoke(app, ["eval", str(run), "--json"])
    assert plain.exit_code == 0, plain.output
    result = runner.invoke(app, ["eval", str(run), "--set", "data.eval_batch_size=3", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.output) == pytest.approx(last_json(plain.output), rel=1e-6)
    assert {"test_acc", "test_acc_std"} <= set(last_json(result.output))
    bad = runner.invoke(app, ["eval", str(run), "--set", "data.eval_batch_size=0"])
    assert bad.exit_code == 2 and "eval_batch_size" in bad.output


def test_length_curriculum_draws_the_shortest_sentences_first() -> None:
    from collections import Counter

    from seqlab.data.vocab import Vocab
    from seqlab.tasks.sentence_classify import ClassifyData

    lengths = [1 + i % 40 for i in range(400)]
    tokens = [["w"] * n for n in lengths]
    labels = list(range(400))  # the label names the example
    data = ClassifyData(Vocab.from_counter(Counter(["w"])), ["a"], {"train": (tokens, labels)}, {})
    sets = ["trainer.batch_size=20", "data.curriculum.schedule=competence"]
    cfg = load_config(
        REPO / "configs" / "sst1_cnn_rand.yaml",
        [*sets, "data.curriculum.steps=20", "data.curriculum.c0=0.1"],
    )
    batches = list(SentenceClassifyTask().train_batches(cfg, data, epoch=0))
    assert len(batches) == 20
    assert max(lengths[i] for i in batches[0].labels.tolist()) <= 4  # the easiest 10%
    assert max(lengths[i] for b in batches[-1:] for i in b.labels.tolist()) > 30  # t = 19
    with pytest.raises(ConfigError, match="'length' only"):
        load_config(
            REPO / "configs" / "sst1_cnn_rand.yaml", [*sets, "data.curriculum.score=source_length"]
        )


def test_a_curriculum_in_a_process_group_follows_the_update_count() -> None:
    """With 2 processes each draws half-size batches, and update t is the two processes'
    parts of update t of the one-process curriculum: the same schedule, the same pool."""
    from collections import Counter

    from seqlab.data.vocab import Vocab
    from seqlab.tasks.sentence_classify import ClassifyData
    from seqlab.train.distributed import Context

    lengths = [1 + i % 40 for i in range(400)]
    tokens = [["w"] * n for n in lengths]
    sets = ["trainer.batch_size=20", "data.curriculum.schedule=competence"]
    cfg = load_config(
        REPO / "configs" / "sst1_cnn_rand.yaml",
        [*sets, "data.curriculum.steps=20", "data.curriculum.c0=0.1"],
    )
    task = SentenceClassifyTask()
    vocab = Vocab.from_counter(Counter(["w"]))
    one = ClassifyData(vocab, ["a"], {"train": (tokens, list(range(400)))}, {})
    single = [b.labels.tolist() for b in task.train_batches(cfg, one, epoch=0)]
    parts = []
    for rank in (0, 1):
        data = ClassifyData(vocab, ["a"], {"train": (tokens, list(range(400)))}, {})
        batches = task._batches(cfg, data, Context(rank=rank, world=2))(0)
        parts.append([b.labels.tolist() for b in batches if b is not None])
    assert len(parts[0]) == len(parts[1]) == len(single) == 20  # one part each per update
    assert all(len(p) == 10 for rank in parts for p in rank)
    assert max(lengths[i] for p in (parts[0][0], parts[1][0]) for i in p) <= 4  # update 0
    assert max(lengths[i] for p in (parts[0][-1], parts[1][-1]) for i in p) > 30  # t = 19
    assert parts[0][0] != parts[1][0]  # the two processes' parts differ

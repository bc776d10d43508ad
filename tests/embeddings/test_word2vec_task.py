from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from seqlab.config import (
    EvalConfig,
    ExperimentConfig,
    OptimConfig,
    TrainerConfig,
    build_dataclass,
)
from seqlab.embeddings.vectors_io import load_word2vec
from seqlab.errors import ConfigError, DataError
from seqlab.plots import run_embeddings
from seqlab.tasks.word2vec import (
    Word2VecDataConfig,
    Word2VecModelConfig,
    Word2VecTask,
    word2vec_config,
)

REPO = Path(__file__).resolve().parents[2]

try:
    from gensim import models as gensim_models
except ImportError:  # gensim is a dev dependency
    gensim_models = None


def experiment(data: Word2VecDataConfig, **model: Any) -> ExperimentConfig:
    return ExperimentConfig(
        task="word2vec",
        data=data,
        model=Word2VecModelConfig(**{"dim": 16, "window": 3, "sample": 0.0, **model}),
        optim=OptimConfig(name="sgd", lr=0.05, min_lr=0.0001),
        trainer=TrainerConfig(epochs=3, threads=1, seed=1),
        eval=EvalConfig(metric="test_analogy", mode="max"),
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    groups = [["red", "green", "blue"], ["one", "two", "three"], ["cat", "dog", "cow"]]
    lines = []
    for _ in range(600):
        group = groups[rng.integers(3)]
        lines.append(" ".join(group[i] for i in rng.integers(0, 3, size=8)))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    questions = tmp_path / "questions.txt"
    questions.write_text(": s\nred green one two\ncat dog red zebra\n", encoding="utf-8")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("red\tgreen\t9\nred\tcat\t1\none\ttwo\t8\ndog\tone\t2\n", encoding="utf-8")
    return {"corpus": corpus, "questions": questions, "pairs": pairs}


def test_fit_saves_vectors_and_metrics_then_eval_and_predict(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    data = Word2VecDataConfig(
        corpus=str(files["corpus"]),
        min_count=1,
        analogies=str(files["questions"]),
        similarity=(str(files["pairs"]),),
    )
    cfg = experiment(data)
    task = Word2VecTask()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    metrics = task.fit(cfg, run_dir)
    assert metrics["corpus_words"] == 3 * 600 * 8 and metrics["vocab_size"] == 9
    assert metrics["test_analogy_answered"] == 1 and metrics["test_analogy_oov"] == 1
    assert metrics["test_pairs"] > 0.5  # related pairs are closer
    text = load_word2vec(run_dir / "vectors.txt")
    binary = load_word2vec(run_dir / "vectors.bin")
    assert text.words == binary.words and np.array_equal(text.vectors, binary.vectors)
    if gensim_models is not None:  # the client for the files
        for name, is_binary in (("vectors.txt", False), ("vectors.bin", True)):
            kv = gensim_models.KeyedVectors.load_word2vec_format(run_dir / name, binary=is_binary)
            assert kv.index_to_key == text.words and np.array_equal(kv.vectors, text.vectors)
    assert (run_dir / "vocab.tsv").read_text(encoding="utf-8").count("\n") == 9
    assert (run_dir / "metrics.jsonl").is_file()

    model, eval_files = task.load_trained(cfg, run_dir)
    assert task.evaluate(cfg, model, eval_files, "test")["test_pairs"] == metrics["test_pairs"]
    answers = list(task.predict(cfg, model, eval_files, ["red", "red green", "", "red cat dog"]))
    assert len(answers) == 3
    assert answers[0].split()[0] in {"green", "blue"}
    assert -1 <= float(answers[1]) <= 1
    with pytest.raises(DataError, match="query line 1: 'zebra' is not in the vocabulary"):
        list(task.predict(cfg, model, eval_files, ["zebra"]))
    only_pairs = task.setup_eval(cfg, run_dir, str(files["pairs"]))
    assert only_pairs.analogies is None and list(only_pairs.similarity) == ["pairs"]
    png = run_embeddings(run_dir, tmp_path / "map.png", ["red", "green", "blue", "cat"])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_config_mapping_and_errors(files: dict[str, Path]) -> None:
    cfg = experiment(Word2VecDataConfig(corpus=str(files["corpus"])), name="cbow")
    w2v = word2vec_config(cfg)
    assert (w2v.architecture, w2v.alpha, w2v.min_alpha, w2v.workers) == ("cbow", 0.05, 1e-4, 1)
    with pytest.raises(ConfigError, match="optim.name: sgd"):
        word2vec_config(cfg.replace(optim=OptimConfig(name="adam")))


def test_config_file_sections_are_valid() -> None:
    raw = yaml.safe_load((REPO / "configs" / "w2v_ptb.yaml").read_text(encoding="utf-8"))
    assert raw["task"] == "word2vec"
    cfg = ExperimentConfig(
        task=raw["task"],
        data=build_dataclass(Word2VecDataConfig, raw["data"], "data"),
        model=build_dataclass(Word2VecModelConfig, raw["model"], "model"),
        optim=build_dataclass(OptimConfig, raw["optim"], "optim"),
        trainer=build_dataclass(TrainerConfig, raw["trainer"], "trainer"),
        eval=build_dataclass(EvalConfig, raw["eval"], "eval"),
    )
    w2v = word2vec_config(cfg)
    assert (w2v.dim, w2v.window, w2v.negative, w2v.min_count, w2v.workers) == (100, 5, 5, 5, 2)
    assert (w2v.sample, w2v.epochs, w2v.alpha) == (1e-3, 5, 0.025)


def test_smoke_run_on_ptb(tmp_path: Path, shared_data: Path) -> None:
    if not (shared_data / "ptb" / "ptb.train.txt").is_file():
        pytest.skip("PTB is not in shared data")
    cfg = experiment(Word2VecDataConfig(similarity=("wordsim353",)), dim=32)
    cfg = cfg.replace(trainer=TrainerConfig(epochs=1, threads=2, max_steps=3))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    metrics = Word2VecTask().fit(cfg, run_dir)
    assert metrics["steps"] == 3 and metrics["vocab_size"] == 9858
    assert metrics["test_analogy_answered"] + metrics["test_analogy_oov"] == 19544
    assert metrics["test_wordsim353_oov"] == 116

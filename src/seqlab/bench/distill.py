"""`seqlab bench distill`: inference sentences/s of the distillation teacher and student.

The teacher is configs/sst2_bilstm.yaml (BiLSTM, 150 units each way, over 300-d
embeddings, attention pooling), the student configs/sst2_cnn_small.yaml (CNN, 64-d
embeddings, widths 3/4/5 x 32 maps), both with the vocabulary of the SST-2 training
phrases. They classify the SST-2 test sentences (1,821) in the same process, in rounds
that alternate which model goes first so that machine noise hits both alike; a pass is
what ``evaluate`` does per batch (collation, forward, argmax) under ``no_grad``, in eval
mode. Two batchings: batches of the data config's ``eval_batch_size`` (500) and one
sentence at a time (serving; the first 200 test sentences). The weights are fresh (seed
1): a network's speed does not depend on its weight values, so the bench needs no
trained runs. ``student_speedup`` = student / teacher sentences/s (median over rounds'
ratios), ``student_speedup_batch1`` the same one sentence at a time; ``--quick``: one
round over the first 200 test sentences. torch's thread count is left as it is (recorded
as ``torch_threads``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
from torch import nn

from seqlab.bench.metadata import bench_metadata
from seqlab.config import ExperimentConfig
from seqlab.contract import contract
from seqlab.loader import load_config
from seqlab.shipped import CONFIG_DIR
from seqlab.tasks.sentence_classify import ClassifyData, SentenceClassifyTask
from seqlab.train.trainer import seed_everything

TEACHER = CONFIG_DIR / "sst2_bilstm.yaml"
STUDENT = CONFIG_DIR / "sst2_cnn_small.yaml"
SINGLE = 200
"""Sentences classified one at a time."""


def _classify(
    task: SentenceClassifyTask,
    cfg: ExperimentConfig,
    model: nn.Module,
    data: ClassifyData,
    tokens: Sequence[Sequence[str]],
    size: int,
) -> int:
    """Classify ``tokens`` in batches of ``size``; the number of positive predictions."""
    positive = 0
    with torch.no_grad():
        for start in range(0, len(tokens), size):
            chunk = tokens[start : start + size]
            batch = task.make_batch(cfg, data, chunk, [0] * len(chunk))
            positive += int(contract(model).predict(batch).sum())
    return positive


def run(quick: bool = False, rounds: int = 5, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """``overrides`` (``key=value``) apply to both configs (tests: a small data file)."""
    rounds = 1 if quick else rounds
    task = SentenceClassifyTask()
    sides: dict[str, tuple[ExperimentConfig, nn.Module, ClassifyData]] = {}
    with TemporaryDirectory() as tmp:
        for name, path in (("teacher", TEACHER), ("student", STUDENT)):
            cfg = load_config(path, ["trainer.progress=false", *overrides])
            data = task.setup(cfg, Path(tmp) / name, train=True)
            seed_everything(1)
            sides[name] = (cfg, task.build_model(cfg, data).eval(), data)
    tokens = sides["student"][2].splits["test"][0][: SINGLE if quick else None]
    size = sides["student"][0].data.eval_batch_size
    seconds: dict[str, list[float]] = {f"{n}{b}": [] for n in sides for b in ("", "_batch1")}
    for cfg, model, data in sides.values():  # warm up both
        _classify(task, cfg, model, data, tokens[:size], size)
    for round_index in range(rounds):
        order = ("teacher", "student") if round_index % 2 == 0 else ("student", "teacher")
        for name in order:
            cfg, model, data = sides[name]
            start = time.perf_counter()
            _classify(task, cfg, model, data, tokens, size)
            seconds[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            _classify(task, cfg, model, data, tokens[:SINGLE], 1)
            seconds[f"{name}_batch1"].append(time.perf_counter() - start)
    single = min(SINGLE, len(tokens))
    rate = {
        key: (single if key.endswith("batch1") else len(tokens)) * len(t) / sum(t)
        for key, t in seconds.items()
    }
    speedup = [t / s for t, s in zip(seconds["teacher"], seconds["student"], strict=True)]
    speedup1 = [
        t / s for t, s in zip(seconds["teacher_batch1"], seconds["student_batch1"], strict=True)
    ]
    params = {
        name: sum(p.numel() for p in model.parameters()) for name, (_, model, _) in sides.items()
    }
    return {
        "teacher_sentences_per_s": rate["teacher"],
        "student_sentences_per_s": rate["student"],
        "student_speedup": statistics.median(speedup),
        "teacher_sentences_per_s_batch1": rate["teacher_batch1"],
        "student_sentences_per_s_batch1": rate["student_batch1"],
        "student_speedup_batch1": statistics.median(speedup1),
        "teacher_parameters": params["teacher"],
        "student_parameters": params["student"],
        "teacher_config": TEACHER.name,
        "student_config": STUDENT.name,
        "test_sentences": len(tokens),
        "batch_size": size,
        "rounds": rounds,
        **bench_metadata("cpu"),
    }

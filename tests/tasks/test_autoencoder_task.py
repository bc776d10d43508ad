"""The ``ae_bow`` task: tiny runs on a labelled-lines file, the linear probe, few labels,
the shipped configs through the CLI."""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.linalg import subspace_angles
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.errors import ConfigError, TrainingError
from seqlab.evaluation import evaluate_run
from seqlab.experiments import ae_mr
from seqlab.experiments.ae_mr import PCA
from seqlab.loader import from_dict, load_config
from seqlab.runs import train
from seqlab.tasks import TASKS, layerwise
from seqlab.tasks.autoencoder import (
    AE_MODELS,
    AESpec,
    AutoencoderTask,
    StackedConfig,
    finetune_split,
    fit_linear_probe,
    labelled_subset,
    load_data,
)
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.trainer import Interrupted

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ["ae_dense", "ae_sparse", "ae_denoising", "ae_vae", "ae_stacked"]
POSITIVE = ["good", "great", "fine", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring"]
FILLER = ["film", "movie", "plot", "the", "a", "story", "acting", "cast"]


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ae_bow`` in the task registry (whether or not tasks/__init__ registers it)."""
    monkeypatch.setitem(TASKS._items, "ae_bow", AutoencoderTask())


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """200 sentences: two sentiment words of the label's list among filler words."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(200):
        label, words = ("pos", POSITIVE) if i % 2 else ("neg", NEGATIVE)
        chosen = [*rng.choice(words, 2), *rng.choice(FILLER, 4)]
        lines.append(f"{label}\t{' '.join(rng.permutation(chosen))}")
    path = tmp_path / "corpus.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config(corpus: Path, model: dict[str, Any], **sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "task": "ae_bow",
        "data": {"dataset": str(corpus), "encoding": "utf-8", "max_features": 30, "labels": 40},
        "model": model if model["name"] == "stacked" else {"code_size": 8, **model},
        "optim": {"lr": 0.01},
        "trainer": {"epochs": 15, "batch_size": 16, "seed": 3, "progress": False},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return raw


def test_data_is_binary_bow_over_the_top_words_with_a_labelled_subset(corpus: Path) -> None:
    cfg = from_dict(config(corpus, {"name": "dense"}, data={"max_features": 5}))
    data = load_data(cfg)
    assert {k: tuple(v.shape) for k, v in data.inputs.items()} == {
        "train": (162, 5),
        "val": (18, 5),
        "test": (20, 5),
    }
    assert data.inputs["train"].dtype == torch.bool and data.labels == ["neg", "pos"]
    # The 5 most frequent training words, each present in at least one sentence.
    assert len(data.vocab) == 5 and bool(data.inputs["train"].any(0).all())
    assert len(data.labelled) == 40 and len(set(data.labelled.tolist())) == 40
    assert torch.equal(data.labelled, labelled_subset(162, 40, seed=3))
    assert not torch.equal(data.labelled, labelled_subset(162, 40, seed=4))
    fine, held = finetune_split(data)
    assert (len(fine), len(held)) == (32, 8)
    with pytest.raises(ConfigError, match="data.labels=500"):
        labelled_subset(162, 500, seed=0)


def test_linear_probe_chooses_l2_by_cross_validation_and_separates_classes() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(200) % 2
    codes = torch.randn(200, 5, generator=generator) + 3.0 * targets[:, None] * torch.tensor(
        [1.0, 0, 0, 0, 0]
    )
    probe = fit_linear_probe(codes * 100, targets, 2, l2_grid=(1e-3, 1.0, 1e3))
    assert probe.accuracy(codes * 100, targets) > 90
    # The codes are centered, so even l2 = 1e3 keeps the boundary at the data and may tie
    # with the weaker strengths in cross-validation (ties go to the stronger L2; whether they
    # tie depends on the CPU's float reductions), so any grid value can be chosen here.
    assert probe.l2 in (1e-3, 1.0, 1e3)
    assert probe.scale == pytest.approx(float((codes * 100).std(0).pow(2).mean().sqrt()), rel=0.05)


def test_a_strongly_regularised_probe_puts_its_boundary_at_the_data() -> None:
    """Under a strong L2 the weights are tiny and the boundary rests on the bias: with codes
    far from the origin (all positive, as ReLU or bag-of-words codes are) an uncentered fit
    left the bias at 0 and cut at h = 0, i.e. at chance here."""
    generator = torch.Generator().manual_seed(1)
    targets = torch.arange(400) % 2
    codes = 10.0 + torch.randn(400, 3, generator=generator) + 2.0 * targets[:, None]
    probe = fit_linear_probe(codes, targets, 2, l2_grid=(1e3,))
    assert probe.l2 == 1e3
    assert probe.accuracy(codes, targets) > 80


def test_dense_run_trains_reports_reconstruction_and_probe_and_evaluates_again(
    tmp_path: Path, corpus: Path
) -> None:
    cfg = from_dict(config(corpus, {"name": "dense", "tied": True}))
    run = tmp_path / "run"
    metrics = train(cfg, run)
    assert {"vocab.json", "labels.json", "best.safetensors", "metrics.json"} <= {
        p.name for p in run.iterdir()
    }
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["val_loss"] < 0.8 * history[0]["val_loss"]
    assert metrics["labelled"] == 40 and metrics["val_loss"] == min(h["val_loss"] for h in history)
    assert metrics["test_acc"] >= 80.0  # 8 units code the two word lists apart
    again = evaluate_run(run, "test")
    assert again["test_acc"] == metrics["test_acc"]
    assert again["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)


def test_same_seed_same_numbers(tmp_path: Path, corpus: Path) -> None:
    raw = config(corpus, {"name": "denoising"}, trainer={"epochs": 2})
    first = train(from_dict(raw), tmp_path / "a")
    second = train(from_dict(raw), tmp_path / "b")
    assert first == second


def test_stacked_run_pretrains_each_layer_then_fine_tunes(tmp_path: Path, corpus: Path) -> None:
    model = {"name": "stacked", "hidden_sizes": [16, 8], "pretrain_epochs": 20, "dropout": 0.0}
    raw = config(
        corpus,
        model,
        optim={"lr": 0.05},
        trainer={"epochs": 30},
        eval={"metric": "heldout_acc", "mode": "max"},
    )
    metrics = train(from_dict(raw), tmp_path / "run")
    for layer in (1, 2):
        assert metrics[f"layer{layer}_error_after"] < metrics[f"layer{layer}_error_before"]
    assert metrics["test_acc"] >= 80.0 and "probe_l2" not in metrics
    history = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert "heldout_acc" in json.loads(history[0])
    for layer in (1, 2):  # one Trainer run per layer, in its own dir
        pretraining = (
            tmp_path / "run" / "pretrain" / f"layer{layer}" / "metrics.jsonl"
        ).read_text()
        assert len(pretraining.splitlines()) == 20


def test_interrupted_pretraining_resumes_to_the_same_weights(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Masking noise and dropout draw from the global RNG, so resume must restore it too.
    model = {"name": "stacked", "hidden_sizes": [16, 8], "pretrain_epochs": 3}
    raw = config(
        corpus,
        model | {"noise_level": 0.2, "dropout": 0.2},
        trainer={"epochs": 4},
        eval={"metric": "heldout_acc", "mode": "max"},
    )
    full = train(from_dict(raw), tmp_path / "full")

    real = layerwise.shuffled_batches

    def interrupted(
        codes: torch.Tensor, batch_size: int, seed: int, layer: int, epoch: int
    ) -> Iterator[torch.Tensor]:
        """The real batches; Ctrl-C while layer 2 trains on the third batch of epoch 2."""
        for index, batch in enumerate(real(codes, batch_size, seed, layer, epoch)):
            if (layer, epoch, index) == (2, 1, 2):
                signal.raise_signal(signal.SIGINT)
            yield batch

    monkeypatch.setattr(layerwise, "shuffled_batches", interrupted)
    part = tmp_path / "part"
    with pytest.raises(Interrupted, match="layer2"):  # in epoch 2 of layer 2
        train(from_dict(raw), part)
    assert not (part / "checkpoint.pt").exists()  # fine-tuning had not begun
    monkeypatch.setattr(layerwise, "shuffled_batches", real)
    resumed = train(from_dict(raw), part, resume=True)

    assert resumed == full
    for layer in (1, 2):  # resumed, not redone: each epoch's evaluation is logged once
        logs = [
            [(h["step"], h["val_error"]) for h in map(json.loads, lines)]
            for lines in (
                (d / "pretrain" / f"layer{layer}" / "metrics.jsonl").read_text().splitlines()
                for d in (tmp_path / "full", part)
            )
        ]
        assert logs[0] == logs[1] and [step for step, _ in logs[1]] == [11, 22, 33]
    for name in ["pretrain/layer1/checkpoint.pt", "pretrain/layer2/checkpoint.pt"]:
        a, b = (load_checkpoint(d / name)["model"] for d in (tmp_path / "full", part))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    full_weights = load_file(tmp_path / "full" / "best.safetensors")
    part_weights = load_file(part / "best.safetensors")
    assert full_weights.keys() == part_weights.keys()
    assert all(torch.equal(full_weights[k], part_weights[k]) for k in full_weights)


def test_the_task_asks_the_spec_not_the_model_type(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack registered without a pretraining hook is fine-tuned from its random
    initialisation, as a classifier because its spec has a collate."""
    stacked = AE_MODELS.get("stacked")
    spec = AESpec(StackedConfig, stacked.build, stacked.collate)
    monkeypatch.setitem(AE_MODELS._items, "stacked_scratch", spec)
    raw = config(
        corpus,
        {"name": "stacked", "hidden_sizes": [8]},
        trainer={"epochs": 2},
        eval={"metric": "heldout_acc", "mode": "max"},
    )
    cfg = from_dict(raw)
    cfg = cfg.replace(model=dataclasses.replace(cfg.model, name="stacked_scratch"))
    metrics = AutoencoderTask().fit(cfg, tmp_path)
    assert not (tmp_path / "pretrain").exists() and "layer1_error_after" not in metrics
    assert {"test_acc", "val_loss"} <= set(metrics) and "probe_l2" not in metrics
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4] and "heldout_acc" in history[0]
    assert metrics["steps"] == 2 * 2  # 32 fine-tuning examples in batches of 16


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_run_through_the_cli(name: str, tmp_path: Path, corpus: Path) -> None:
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.task == "ae_bow" and cfg.data.dataset == "rt_polarity"
    sets = [
        f"data.dataset={corpus}",
        "data.encoding=utf-8",
        "data.labels=20",
        "trainer.max_steps=3",
        "trainer.progress=false",
    ]
    result = CliRunner().invoke(
        app,
        ["train", str(REPO / "configs" / f"{name}.yaml"), "--out", str(tmp_path / "run")]
        + [arg for s in sets for arg in ("--set", s)]
        + ["--json"],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["steps"] == 3 and 0.0 <= metrics["test_acc"] <= 100.0


def test_stacked_needs_its_heldout_metric(tmp_path: Path, corpus: Path) -> None:
    raw = config(corpus, {"name": "stacked", "hidden_sizes": [4]}, trainer={"max_steps": 1})
    with pytest.raises(TrainingError, match="heldout_acc"):
        AutoencoderTask().fit(from_dict(raw), tmp_path)


def test_pca_baseline_is_numpy_svd_of_the_centered_data() -> None:
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(300, 3, generator=generator) @ torch.randn(3, 10, generator=generator)
    data = data + 0.1 * torch.randn(300, 10, generator=generator) + 5.0
    pca = PCA(data, 3)
    centered = (data - data.mean(0)).double().numpy()
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    assert np.degrees(subspace_angles(pca.directions.double().numpy(), vt[:3].T)).max() < 0.01
    codes = pca.encode(data)
    assert codes.shape == (300, 3) and float(codes.mean(0).abs().max()) < 1e-3


def test_experiment_runs_every_representation(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = [f"data.dataset={corpus}", "data.encoding=utf-8", "data.max_features=30"]
    plot = tmp_path / "ae.png"
    argv = ["--seeds", "1", "--labels", "all", "--plot", str(plot), "--json"]
    ae_mr.main(argv + [arg for s in [*sets, "trainer.max_steps=2"] for arg in ("--set", s)])
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert lines[0].startswith("| representation | all labels |")
    for rep in ae_mr.REPRESENTATIONS:
        assert 0.0 <= result[f"{rep}_all_acc"] <= 100.0 and result[f"{rep}_all_std"] == 0.0
    assert result["raw_all_acc"] >= 90.0  # the sentiment words separate the classes
    assert plot.stat().st_size > 0


def test_bad_model_settings_are_config_errors(tmp_path: Path, corpus: Path) -> None:
    raw = config(corpus, {"name": "denoising", "noise": "mask", "noise_level": 1.5})
    with pytest.raises(ConfigError, match="model 'denoising': noise_level must be in"):
        train(from_dict(raw), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing worth keeping was made
    with pytest.raises(ConfigError, match="data.labels must be at least 5"):
        from_dict(config(corpus, {"name": "dense"}, data={"labels": 2}))

"""Adversarial and virtual adversarial training on word embeddings (Miyato et al. 2017):
the perturbations' norm and direction, padding, the limits, and training through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.config import AdversarialConfig, EvalConfig, ExperimentConfig, OptimConfig
from seqlab.contract import EmbeddingPerturbable, LossOutput
from seqlab.data.batching import pad_batch
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.models.classifier import (
    ClassifyBatch,
    RNNClassifier,
    RNNClassifierConfig,
    TextCNN,
    TextCNNConfig,
)
from seqlab.nn.adversarial import (
    adversarial_objective,
    at_perturbation,
    kl_divergence,
    unit_directions,
    vat_perturbation,
)
from seqlab.nn.distill import UNLABELLED
from seqlab.train.trainer import Trainer

runner = CliRunner()
ROWS = [[2, 3, 4, 5, 6, 7], [8, 9], [10, 11, 3], [4]]
LABELS = [0, 1, 1, 0]
MODELS = {
    "cnn": lambda: TextCNN(TextCNNConfig(embedding_size=6, maps=5, widths=(1, 2)), 12, 2),
    "lstm": lambda: RNNClassifier(RNNClassifierConfig(embedding_size=6, hidden_size=8), 12, 2),
}


def make_batch(labels: list[int] = LABELS) -> ClassifyBatch:
    return ClassifyBatch(pad_batch(ROWS, 0), torch.tensor(labels))


def build(name: str) -> TextCNN | RNNClassifier:
    torch.manual_seed(0)
    return MODELS[name]().double().eval()  # float64: exact comparisons, no dropout


@pytest.mark.parametrize("name", list(MODELS))
def test_at_perturbation_has_norm_epsilon_along_the_loss_gradient(name: str) -> None:
    model, batch = build(name), make_batch()
    assert isinstance(model, EmbeddingPerturbable)
    embedded, mask = model.embed(batch)
    loss = model.loss_from_logits(batch, model.logits_from_embeddings(batch, embedded)).loss
    r = at_perturbation(loss, embedded, mask, epsilon=0.5)  # (B, T, E)
    torch.testing.assert_close(r.flatten(1).norm(dim=1), torch.full((4,), 0.5).double())
    # the gradient of the loss w.r.t. a fresh copy of the embeddings, by autograd
    leaf = embedded.detach().requires_grad_()
    model.loss_from_logits(batch, model.logits_from_embeddings(batch, leaf)).loss.backward()
    assert leaf.grad is not None
    expected = 0.5 * leaf.grad / leaf.grad.flatten(1).norm(dim=1).view(-1, 1, 1)
    torch.testing.assert_close(r, expected)
    # and by finite differences: moving one sentence by h * r changes the loss by
    # h * <g, r> = h * epsilon * ||g||, the steepest first-order increase
    h = 1e-6
    for i in range(4):
        moved = embedded.detach().clone()
        moved[i] += h * r[i]
        after = model.loss_from_logits(batch, model.logits_from_embeddings(batch, moved)).loss
        slope = (after - loss.detach()) / h
        torch.testing.assert_close(slope, 0.5 * leaf.grad[i].norm(), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("name", list(MODELS))
def test_padding_is_never_perturbed(name: str) -> None:
    model, batch = build(name), make_batch()
    embedded, mask = model.embed(batch)
    logits = model.logits_from_embeddings(batch, embedded)
    loss = model.loss_from_logits(batch, logits).loss
    at = at_perturbation(loss, embedded, mask, 1.0)
    vat = vat_perturbation(
        lambda e: model.logits_from_embeddings(batch, e), embedded, logits, mask, 1.0, 1e-6, 1
    )
    for r in (at, vat):
        assert bool((r[~mask] == 0).all()) and bool(r[mask].abs().sum() > 0)
        torch.testing.assert_close(r.flatten(1).norm(dim=1), torch.ones(4).double())
    # an all-zero direction stays zero (no division by zero)
    assert not unit_directions(torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)).any()


@pytest.mark.parametrize("name", list(MODELS))
def test_with_a_tiny_epsilon_the_adversarial_loss_is_the_clean_loss(name: str) -> None:
    model, batch = build(name), make_batch()
    for kind in ("at", "vat"):
        clean, objective = adversarial_objective(
            model, batch, AdversarialConfig(kind=kind, epsilon=1e-9)
        )
        torch.testing.assert_close(clean.loss, model.loss(batch).loss)
        extra = objective - clean.loss
        torch.testing.assert_close(extra, clean.loss if kind == "at" else torch.zeros_like(extra))
    # a larger epsilon along the gradient raises the loss
    clean, objective = adversarial_objective(model, batch, AdversarialConfig(kind="at", epsilon=1))
    assert float((objective - clean.loss).detach()) > float(clean.loss.detach())


def test_kl_is_zero_at_no_perturbation_and_positive_otherwise() -> None:
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert float(kl_divergence(logits, logits)) == pytest.approx(0.0, abs=1e-7)
    other = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    assert float(kl_divergence(logits, other)) > 0
    # against the formula sum_k p_k log(p_k / q_k)
    p, q = logits.softmax(-1), other.softmax(-1)
    torch.testing.assert_close(kl_divergence(logits, other), (p * (p / q).log()).sum(-1).mean())
    model, batch = build("cnn"), make_batch()
    with torch.no_grad():
        embedded, _ = model.embed(batch)
        clean = model.logits_from_embeddings(batch, embedded)
        moved = model.logits_from_embeddings(batch, embedded + 0.1)
    assert float(kl_divergence(clean, moved)) > 0


def test_vat_needs_no_label_and_unlabelled_rows_count_only_there() -> None:
    model = build("lstm")
    batch = make_batch([0, UNLABELLED, 1, UNLABELLED])
    labelled = ClassifyBatch(pad_batch([ROWS[0], ROWS[2]], 0), torch.tensor([0, 1]))
    out = model.loss(batch)
    assert out.n == 2
    torch.testing.assert_close(out.loss, model.loss(labelled).loss)
    nothing = model.loss(make_batch([UNLABELLED] * 4))
    assert nothing.n == 0 and float(nothing.loss.detach()) == 0.0
    torch.manual_seed(3)
    clean, objective = adversarial_objective(
        model, make_batch([UNLABELLED] * 4), AdversarialConfig(kind="vat", epsilon=1.0)
    )
    assert float(clean.loss.detach()) == 0.0 and float(objective.detach()) > 0  # VAT only
    objective.backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.abs().sum() > 0


def test_config_errors(tmp_path: Path) -> None:
    for bad, match in (
        ({"kind": "at", "epsilon": 0}, "optim.adversarial.epsilon must be a number > 0"),
        ({"kind": "at", "epsilon": -1.0}, "optim.adversarial.epsilon must be a number > 0"),
        ({"kind": "fgsm"}, "optim.adversarial.kind.*is not one of 'at', 'vat'"),
        ({"epsilon": 1.0}, "optim.adversarial.'kind' is required"),
        ({"kind": "vat", "power_iterations": 0}, "power_iterations must be >= 1"),
    ):
        overrides = [f"optim.adversarial.{k}={v}" for k, v in bad.items()]
        with pytest.raises(ConfigError, match=match):
            load_config("mr_cnn_small", overrides)

    class NoEmbeddings(nn.Module):
        def loss(self, batch: torch.Tensor) -> LossOutput:
            return LossOutput(batch.sum(), 1)

    cfg = ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        optim=OptimConfig(adversarial=AdversarialConfig(kind="at")),
        eval=EvalConfig(),
    )
    with pytest.raises(ConfigError, match="NoEmbeddings model has no word embeddings"):
        Trainer(NoEmbeddings(), cfg, tmp_path, lambda m: {})


def reviews(tmp_path: Path) -> Path:
    pos = ["a fine moving film", "great acting", "funny and wise", "a joy", "smart and lovely"]
    neg = ["a dull tired mess", "bad acting", "boring and stupid", "a chore", "dumb and tedious"]
    path = tmp_path / "reviews.tsv"
    lines = [f"pos\t{t}" for t in pos] + [f"neg\t{t}" for t in neg]
    path.write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    return path


def train(tmp_path: Path, config: str, out: str, *overrides: str) -> dict[str, float]:
    sets = [
        f"data.dataset={reviews(tmp_path)}",
        "data.encoding=utf-8",
        "data.train_fraction=1.0",
        "model.embedding_size=8",
        "trainer.max_steps=3",
        "trainer.batch_size=8",
        "trainer.progress=false",
        "eval.test=false",
        *overrides,
    ]
    args = ["train", config, "--out", str(tmp_path / out), "--json"]
    result = runner.invoke(app, args + [a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    metrics: dict[str, float] = json.loads(result.output.strip().splitlines()[-1])
    return metrics


@pytest.mark.parametrize("config", ["mr_cnn_small", "mr_lstm_small"])
def test_training_with_at_runs_and_is_deterministic_by_seed(config: str, tmp_path: Path) -> None:
    at = ["optim.adversarial.kind=at", "optim.adversarial.epsilon=0.5"]
    first = train(tmp_path, config, "a", *at)
    assert first["steps"] == 3 and 0 <= first["val_acc"] <= 100
    again = train(tmp_path, config, "b", *at)
    assert again["val_loss"] == first["val_loss"]
    plain = train(tmp_path, config, "c")
    assert plain["val_loss"] != first["val_loss"]  # the adversarial term changed the steps


def test_vat_on_unlabelled_sentences_through_the_cli(tmp_path: Path) -> None:
    unlabelled = tmp_path / "more.txt"
    unlabelled.write_text("a lovely joy\nstupid and dull\n", encoding="utf-8")
    vat = ["optim.adversarial.kind=vat", f"data.unlabelled={unlabelled}"]
    first = train(tmp_path, "mr_cnn_small", "a", *vat)
    assert train(tmp_path, "mr_cnn_small", "b", *vat)["val_loss"] == first["val_loss"]
    report = json.loads((tmp_path / "a" / "data_report.json").read_text())
    assert report["train_unlabelled"] == 2
    with pytest.raises(AssertionError, match="data.unlabelled needs data.teachers or"):
        train(tmp_path, "mr_cnn_small", "c", f"data.unlabelled={unlabelled}")

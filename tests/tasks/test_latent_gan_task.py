"""Task ``latent_gan`` end to end: a tiny sequence autoencoder and a tiny LM trained here,
a few GAN steps, evaluation with the references, generate, determinism by seed, and the
errors for a missing or wrong run dir."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.config import ExperimentConfig
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.tasks import TASKS
from seqlab.tasks.latent_gan import (
    forward_perplexity,
    frechet_distance,
    write_autoencoder_sentences,
)

runner = CliRunner()
SENTENCES = [
    "the film is good",
    "a dull film",
    "good acting",
    "the plot is thin and dull",
    "a good film with good acting",
    "the acting is dull",
]


def train(config: dict, path: Path, run: Path, *extra: str) -> dict:
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", str(path), "--out", str(run), "--json", *extra])
    assert result.exit_code == 0, result.output
    metrics: dict = json.loads(result.output.strip().splitlines()[-1])
    return metrics


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(autoencoder run, LM run, work dir), trained once for this module (~2 s)."""
    tmp = tmp_path_factory.mktemp("latent_gan")
    text = tmp / "sentences.txt"
    text.write_text("\n".join(SENTENCES * 8) + "\n", encoding="utf-8")
    ae = tmp / "ae"
    train(
        {
            "task": "seq_autoencode",
            "data": {"dataset": str(text), "max_length": 10, "max_vocab": 20},
            "model": {"embedding_size": 8, "hidden_size": 16},
            "optim": {"name": "adam", "lr": 0.03},
            "trainer": {"epochs": 3, "batch_size": 8, "progress": False, "log_every": 0},
            "eval": {"metric": "val_loss", "mode": "min"},
        },
        tmp / "ae.yaml",
        ae,
    )
    lm_text = tmp / "lm.txt"
    assert write_autoencoder_sentences(ae, "train", lm_text) > 0
    lm = tmp / "lm"
    train(
        {
            "task": "lm_rnn",
            "data": {"dataset": str(lm_text), "bptt": 8, "eval_batch_size": 2},
            "model": {"embedding_size": 8, "hidden_size": 16, "num_layers": 1},
            "optim": {"name": "adam", "lr": 0.01},
            "trainer": {"epochs": 1, "batch_size": 4, "progress": False, "log_every": 0},
            "eval": {"metric": "val_ppl", "mode": "min"},
        },
        tmp / "lm.yaml",
        lm,
    )
    return ae, lm, tmp


def gan_config(ae: Path, lm: Path | str, **model: object) -> dict:
    return {
        "task": "latent_gan",
        "data": {"autoencoder": str(ae), "lm": str(lm), "samples": 12},
        "model": {"noise_size": 4, "hidden_size": 16, "critic_iters": 2, **model},
        "optim": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9]},
        "trainer": {"max_steps": 6, "batch_size": 8, "progress": False, "log_every": 2},
        "eval": {"metric": "val_gan_fppl", "mode": "min"},
    }


def test_trains_evaluates_and_generates(runs: tuple[Path, Path, Path]) -> None:
    ae, lm, tmp = runs
    metrics = train(gan_config(ae, lm), tmp / "gan.yaml", tmp / "gan")
    assert metrics["steps"] == 6
    for split in ("val", "test"):
        for source in ("gan", "real", "gauss", "lm"):
            assert 0.0 <= metrics[f"{split}_{source}_distinct1"] <= 1.0
            assert metrics[f"{split}_{source}_fppl"] > 1.0
        assert metrics[f"{split}_real_unk"] == 0.0  # max_vocab 20 holds every word here
        assert metrics[f"{split}_gan_code_fd"] >= 0.0
    # metrics.jsonl: one record every 2 generator steps, then the final metrics
    records = [json.loads(x) for x in (tmp / "gan" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6, 6]
    samples = json.loads((tmp / "gan" / "samples_val.json").read_text())
    assert (
        set(samples) == {"gan", "real", "gauss", "lm"}
        and len(samples["real"]) == len(samples["gan"]) >= 4
    )
    # seqlab eval reproduces the final metrics of training (same seed, same draws)
    result = runner.invoke(app, ["eval", str(tmp / "gan"), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.output.strip().splitlines()[-1])
    assert again["val_gan_fppl"] == pytest.approx(metrics["val_gan_fppl"])
    # sampled decoding: a data.* override of the finished run, its samples kept apart
    args = ["eval", str(tmp / "gan"), "--split", "val", "--set", "data.decode=sample", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    sampled = json.loads(result.output.strip().splitlines()[-1])
    assert sampled["val_real_fppl"] == pytest.approx(metrics["val_real_fppl"])
    assert sampled["val_gan_fppl"] != pytest.approx(metrics["val_gan_fppl"])
    assert (tmp / "gan" / "samples_val_sample.json").is_file()
    result = runner.invoke(app, ["generate", str(tmp / "gan"), "--max-tokens", "10", "--json"])
    assert result.exit_code == 0, result.output
    text = json.loads(result.output.strip().splitlines()[-1])["text"]
    assert len(text.split()) >= 10 and text.count("\n") >= 1
    result = runner.invoke(app, ["generate", str(tmp / "gan"), "--prompt", "the"])
    assert result.exit_code != 0 and "no --prompt" in result.output


def test_same_seed_same_numbers(runs: tuple[Path, Path, Path]) -> None:
    ae, lm, tmp = runs
    cfg = gan_config(ae, "", penalty="clip")
    cfg["data"]["references"] = False
    first = train(cfg, tmp / "a.yaml", tmp / "seed_a")
    second = train(cfg, tmp / "b.yaml", tmp / "seed_b")
    other = train(cfg, tmp / "c.yaml", tmp / "seed_c", "--set", "trainer.seed=2")
    drop = ("train_seconds", "run_dir")
    assert {k: v for k, v in first.items() if k not in drop} == {
        k: v for k, v in second.items() if k not in drop
    }
    assert first["val_w_distance"] != other["val_w_distance"]
    assert "val_gauss_distinct1" not in first and "val_gan_fppl" not in first


def test_forward_perplexity_counts_oov(runs: tuple[Path, Path, Path]) -> None:
    ae, lm, tmp = runs
    cfg = load_config_from(gan_config(ae, lm), tmp / "oov.yaml")
    data = TASKS.get("latent_gan").setup(cfg, tmp / "oov", train=False)
    assert data.lm is not None and data.codes.shape == (len(data.sentences["train"]), 32)
    ppl, oov, words = forward_perplexity(data.lm, [["the", "zebra", "film"], ["good"]])
    assert (oov, words) == (1, 4) and ppl > 1.0
    # a sentence scored in a padded batch gets the loss it gets alone
    short, _, _ = forward_perplexity(data.lm, [["good"]])
    long, _, _ = forward_perplexity(data.lm, [["the", "plot", "is", "thin"]])
    pair, _, _ = forward_perplexity(data.lm, [["good"], ["the", "plot", "is", "thin"]])
    expected = math.exp((2 * math.log(short) + 5 * math.log(long)) / 7)
    assert pair == pytest.approx(expected, rel=1e-5)


def load_config_from(raw: dict, path: Path) -> ExperimentConfig:
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_errors_name_the_run_dir(runs: tuple[Path, Path, Path]) -> None:
    ae, lm, tmp = runs
    task = TASKS.get("latent_gan")
    cfg = load_config_from(gan_config(tmp / "missing", lm), tmp / "e1.yaml")
    with pytest.raises(ConfigError, match="data.autoencoder: .*missing is not a run dir"):
        task.setup(cfg, tmp / "e1", train=False)
    cfg = load_config_from(gan_config(lm, lm), tmp / "e2.yaml")
    with pytest.raises(ConfigError, match="is a 'lm_rnn' run; it must be seq_autoencode"):
        task.setup(cfg, tmp / "e2", train=False)
    cfg = load_config_from(gan_config(ae, ae), tmp / "e3.yaml")
    with pytest.raises(ConfigError, match="data.lm: .* is a 'seq_autoencode' run"):
        task.setup(cfg, tmp / "e3", train=False)
    raw = gan_config(ae, lm)
    raw["data"]["autoencoder"] = ""
    with pytest.raises(ConfigError, match="data.autoencoder: name the run dir"):
        load_config_from(raw, tmp / "e4.yaml")
    result = runner.invoke(app, ["train", str(tmp / "e2.yaml"), "--out", str(tmp / "e2")])
    assert result.exit_code != 0 and "must be seq_autoencode" in result.output
    assert not (tmp / "e2").exists()  # a refused run leaves nothing behind


def test_frechet_distance_matches_the_closed_form() -> None:
    torch.manual_seed(0)
    a = torch.randn(4000, 3)
    b = 2.0 * torch.randn(4000, 3) + 1.0  # N(1, 4 I): FD = 3 * 1 + 3 * (1 + 4 - 2 * 2) = 6
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.1)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)

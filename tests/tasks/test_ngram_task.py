"""The ``lm_ngram`` task: train / eval / generate through the run-dir API and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.errors import ConfigError, DataError
from seqlab.evaluation import evaluate_run, generate_text
from seqlab.loader import from_dict, load_config
from seqlab.models.ngram import NGramLM
from seqlab.runs import train
from seqlab.tasks import TASKS
from seqlab.tasks.ngram_lm import NGramLMTask

REPO = Path(__file__).resolve().parents[2]

TRAIN = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat saw the dog",
    "the dog saw a cat",
    "a dog sat on a mat",
]


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lm_ngram`` in the task registry (whether or not tasks/__init__ registers it)."""
    monkeypatch.setitem(TASKS._items, "lm_ngram", NGramLMTask())


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def three_files(tmp_path: Path) -> dict[str, str]:
    return {
        "train": str(write(tmp_path / "train.txt", [*TRAIN, ""])),  # a blank line is skipped
        "valid": str(write(tmp_path / "valid.txt", ["the cat sat on a log"])),
        "test": str(write(tmp_path / "test.txt", ["a dog saw the mat", "the cat"])),
    }


KN3 = {"name": "kneser_ney", "order": 3, "discount": 0.75}


def config(data: dict[str, object], model: dict[str, object] = KN3) -> dict[str, object]:
    return {
        "task": "lm_ngram",
        "data": data,
        "model": model,
        "eval": {"metric": "val_ppl"},
    }


def test_train_eval_generate_on_three_files(tmp_path: Path) -> None:
    cfg = from_dict(config(three_files(tmp_path)))
    run = tmp_path / "run"
    metrics = train(cfg, run)
    assert {"vocab.json", "counts.safetensors", "metrics.json", "metrics.jsonl"} <= {
        p.name for p in run.iterdir()
    }
    # 2 sentences, 7 words + 2 <eos> in the test file; every word is in the vocabulary.
    assert (metrics["test_tokens"], metrics["test_oov"]) == (9.0, 0.0)
    assert metrics["train_tokens"] == 5 * 1 + sum(len(s.split()) for s in TRAIN)
    assert metrics["val_loss"] == pytest.approx(math.log(metrics["val_ppl"]), rel=1e-12)
    assert json.loads((run / "metrics.json").read_text())["test_ppl"] == metrics["test_ppl"]
    # The same number, recomputed from the saved model and vocabulary.
    model = NGramLM.load(run / "counts.safetensors")
    vocab = json.loads((run / "vocab.json").read_text())["itos"]
    assert vocab[:2] == ["<unk>", "<eos>"] and model.vocab_size == len(vocab) == 2 + 9
    ids = [[vocab.index(w) for w in s.split()] for s in ["a dog saw the mat", "the cat"]]
    assert model.perplexity(ids)[0] == pytest.approx(metrics["test_ppl"], rel=1e-12)
    assert evaluate_run(run)["test_ppl"] == pytest.approx(metrics["test_ppl"], rel=1e-12)

    text = generate_text(run, prompt="the", max_tokens=20, temperature=1.0, seed=1)
    assert text.startswith("the")
    assert text == generate_text(run, prompt="the", max_tokens=20, temperature=1.0, seed=1)
    assert len(text.split()) == 1 + 20 - text.count("\n")  # each <eos> is a line break
    assert set(text.split()) <= set(vocab)


def test_eval_on_a_file_maps_and_counts_oov(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(from_dict(config(three_files(tmp_path))), run)
    other = write(tmp_path / "other.txt", ["the zebra sat on the sofa", "", "a cat"])
    result = evaluate_run(run, data_path=str(other))
    assert (result["test_oov"], result["test_tokens"]) == (2.0, 6 + 1 + 2 + 1)
    unk = write(tmp_path / "unk.txt", ["the <unk> sat on the <unk>", "a cat"])
    assert evaluate_run(run, data_path=str(unk))["test_ppl"] == pytest.approx(
        result["test_ppl"], rel=1e-12
    )


def test_single_file_is_split_by_lines(tmp_path: Path) -> None:
    text = write(tmp_path / "all.txt", TRAIN * 4)  # 20 lines: 18 train, 2 validate
    cfg = from_dict(config({"dataset": str(text)}, {"name": "add_k", "order": 2, "k": 0.5}))
    metrics = train(cfg, tmp_path / "run")
    assert metrics["train_tokens"] == 18 + sum(len(s.split()) for s in (TRAIN * 4)[:18])
    assert "val_ppl" in metrics and "test_ppl" not in metrics
    with pytest.raises(DataError, match="too few to split"):
        train(
            from_dict(config({"dataset": str(write(tmp_path / "one.txt", ["a b"]))})),
            tmp_path / "r2",
        )


def test_bad_data_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.valid / data.test need data.train"):
        from_dict(config({"valid": "v.txt"}))
    with pytest.raises(ConfigError, match="data.train needs data.valid"):
        from_dict(config({"train": "t.txt"}))
    files = three_files(tmp_path) | {"valid": str(write(tmp_path / "blank.txt", ["", " "]))}
    with pytest.raises(DataError, match="blank.txt: empty corpus"):
        train(from_dict(config(files)), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # a failed run leaves nothing behind


def test_cli_train_eval_generate(tmp_path: Path) -> None:
    path = tmp_path / "kn.yaml"
    path.write_text(yaml.safe_dump(config(three_files(tmp_path))))
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(path), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    other = write(tmp_path / "other.txt", ["the zebra sat"])
    result = runner.invoke(app, ["eval", str(run), "--data", str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["test_oov"] == 1.0
    result = runner.invoke(app, ["eval", str(run), "--json"])
    assert json.loads(result.stdout.strip().splitlines()[-1])["test_ppl"] == pytest.approx(
        trained["test_ppl"], rel=1e-12
    )
    args = ["generate", str(run), "--prompt", "the", "--max-tokens", "20", "--seed", "1"]
    first, again = runner.invoke(app, [*args, "--json"]), runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    text = json.loads(first.stdout.strip().splitlines()[-1])["text"]
    assert text.startswith("the") and first.stdout == again.stdout
    result = runner.invoke(app, [*args, "--beam", "3"])
    assert result.exit_code != 0 and "no beam search" in result.output


@pytest.mark.parametrize("name", ["ptb_kn5.yaml", "ptb_bigram_addk.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_config(REPO / "configs" / name)
    assert cfg.task == "lm_ngram" and cfg.data.dataset == "ptb"


@pytest.mark.slow
def test_ptb_kn5_reproduces_mikolov(tmp_path: Path, shared_data: Path) -> None:
    """KN5 on PTB: Mikolov (2012) reports 141.2 test perplexity."""
    metrics = train(load_config(REPO / "configs" / "ptb_kn5.yaml"), tmp_path / "run")
    assert metrics["test_tokens"] == 82430 and metrics["test_oov"] == 0
    assert metrics["test_ppl"] == pytest.approx(141.2, abs=1.0)
    assert metrics["val_ppl"] == pytest.approx(148.0, abs=1.0)
    assert metrics["fit_seconds"] < 30

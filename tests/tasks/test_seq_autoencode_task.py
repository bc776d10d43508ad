"""Task ``seq_autoencode`` end to end on a tiny file: train, reconstruction table, plot,
predict; the length-binned table on a hand-made case."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.tasks import TASKS
from seqlab.tasks.seq_autoencode import reconstruction_table

runner = CliRunner()
SENTENCES = ["the film is good", "a dull film", "good acting", "the plot is thin and dull"]


def test_reconstruction_table_by_length() -> None:
    sources = [[1, 2], [3, 4, 5], [6, 7, 8, 9]]
    outputs = [[1, 2], [3, 9, 5, 5], [6, 7]]
    bins = reconstruction_table(sources, outputs, [2, 4, 6])
    assert [b["sentences"] for b in bins] == [1, 2, 0]
    assert bins[0]["exact"] == 100.0 and bins[0]["token_acc"] == 100.0
    assert bins[1]["exact"] == 0.0  # [3,9,5,5] has the right words at 2 of 3 places, too long
    assert bins[1]["token_acc"] == pytest.approx(100.0 * (2 + 2) / 7)
    assert math.isnan(bins[2]["exact"])


@pytest.fixture(scope="module")
def sa_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny sequence autoencoder trained once for the tests of this module; (run, data)."""
    tmp_path = tmp_path_factory.mktemp("sa")
    data = tmp_path / "sentences.txt"
    data.write_text("\n".join(SENTENCES * 10) + "\n" + "word " * 40 + "\n", encoding="utf-8")
    cfg = {
        "task": "seq_autoencode",
        "data": {"dataset": str(data), "max_length": 10, "length_bins": [3, 10]},
        "model": {"embedding_size": 16, "hidden_size": 32},
        "optim": {"name": "adam", "lr": 0.03},
        "trainer": {"epochs": 7, "batch_size": 8, "progress": False, "log_every": 0},
        "eval": {"metric": "val_loss", "mode": "min"},
    }
    config = tmp_path / "sa.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), "--out", str(run)])
    assert result.exit_code == 0, result.output
    return run, data


def test_train_eval_predict_plot(sa_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = sa_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_exact"] == 100.0 and metrics["test_token_acc"] == 100.0
    report = json.loads((run / "data_report.json").read_text())
    left_out = sum(v for k, v in report.items() if k.endswith("max_length_left_out"))
    assert left_out == 1  # the 40-word line
    table = json.loads((run / "reconstruction_test.json").read_text())
    assert [b["max_length"] for b in table["bins"]] == [3, 10]
    assert sum(b["sentences"] for b in table["bins"]) == report["test_sentences"]
    result = runner.invoke(app, ["plot", str(run), "--kind", "reconstruction", "--json"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.output.strip().splitlines()[-1])["path"]).is_file()
    source = tmp_path / "in.txt"
    source.write_text("a dull film\n")
    result = runner.invoke(app, ["predict", str(run), str(source)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "a dull film\ta dull film"


def classifier_config(tmp_path: Path, data: Path, **model: object) -> Path:
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text(
        "".join(f"{'pos' if 'good' in s else 'neg'}\t{s}\n" for s in SENTENCES * 3),
        encoding="utf-8",
    )
    cfg = {
        "task": "classify",
        "data": {"dataset": str(labelled), "encoding": "utf-8", "val_fraction": 0.2},
        "model": {"name": "rnn", "embedding_size": 16, "hidden_size": 32} | model,
        "trainer": {"epochs": 1, "progress": False},
        "eval": {"metric": "val_acc", "mode": "max"},
    }
    path = tmp_path / "cls.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_classifier_starts_from_the_encoder(sa_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = sa_run
    config = classifier_config(tmp_path, data, bidirectional=True, init_from=str(run))
    cfg = load_config(config)
    task = TASKS.get("classify")
    prepared = task.setup(cfg, tmp_path / "cls", train=True)
    model = task.build_model(cfg, prepared)
    task.start_model(cfg, model, prepared)
    encoder = load_file(str(run / "best.safetensors"))
    sa_vocab = Vocab.load(run / "vocab.json")
    for word in ("dull", "film", "thin"):
        torch.testing.assert_close(
            model.embedding.weight[prepared.vocab.index(word)],
            encoder["embedding.weight"][sa_vocab.index(word)],
        )
    torch.testing.assert_close(model.rnn.weight_hh_l0, encoder["encoder.weight_hh_l0"])
    assert not torch.equal(model.rnn.weight_hh_l0_reverse, encoder["encoder.weight_hh_l0"])
    plain = task.build_model(load_config(config, ["model.init_from=null"]), prepared)
    assert not torch.equal(plain.rnn.weight_hh_l0, encoder["encoder.weight_hh_l0"])


def test_init_from_mismatches_are_clear(sa_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = sa_run
    task = TASKS.get("classify")
    for model, message in [
        ({"hidden_size": 8}, "hidden_size 32 there, 8 here"),
        ({"num_layers": 2}, "num_layers 1 there, 2 here"),
        ({"embedding_size": 8}, "embedding_size 16 there, 8 here"),
        ({"cell": "gru"}, "cell lstm there, gru here"),
    ]:
        cfg = load_config(classifier_config(tmp_path, data, init_from=str(run), **model))
        prepared = task.setup(cfg, tmp_path / "cls", train=True)
        with pytest.raises(ConfigError, match=message):
            task.start_model(cfg, task.build_model(cfg, prepared), prepared)
    cfg = load_config(classifier_config(tmp_path, data, init_from=str(tmp_path)))
    prepared = task.setup(cfg, tmp_path / "cls", train=True)
    with pytest.raises(ConfigError, match="not a run dir"):
        task.start_model(cfg, task.build_model(cfg, prepared), prepared)


def test_a_backward_encoder_starts_the_backward_direction(
    sa_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, data = sa_run
    backward = tmp_path / "backward"
    backward.mkdir()
    for name in ("best.safetensors", "vocab.json"):
        (backward / name).write_bytes((run / name).read_bytes())
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["reverse_source"] = True
    (backward / "config.yaml").write_text(yaml.safe_dump(config))
    task = TASKS.get("classify")
    cfg = load_config(classifier_config(tmp_path, data, init_from=str(backward)))
    prepared = task.setup(cfg, tmp_path / "cls", train=True)
    model = task.build_model(cfg, prepared)
    task.start_model(cfg, model, prepared)
    encoder = load_file(str(run / "best.safetensors"))
    torch.testing.assert_close(model.rnn.weight_hh_l0_reverse, encoder["encoder.weight_hh_l0"])
    assert not torch.equal(model.rnn.weight_hh_l0, encoder["encoder.weight_hh_l0"])
    cfg = load_config(
        classifier_config(tmp_path, data, init_from=str(backward), bidirectional=False)
    )
    prepared = task.setup(cfg, tmp_path / "cls", train=True)
    with pytest.raises(ConfigError, match="reads backwards"):
        task.start_model(cfg, task.build_model(cfg, prepared), prepared)

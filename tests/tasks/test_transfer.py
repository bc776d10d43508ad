"""``model.init_from``: a language model's or word2vec run's weights start a classifier and
a tagger (rows mapped by word, sizes checked); a frozen transferred encoder stays as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.vocab import Vocab
from seqlab.embeddings.vectors_io import WordVectors, save_word2vec
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.tasks import TASKS
from seqlab.tasks.tagging import TaggingTask

runner = CliRunner()
SENTENCES = ["the film is good", "a dull film", "good acting", "the plot is thin and dull"]


def write(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny word-level LSTM language model, trained for a few steps."""
    tmp_path = tmp_path_factory.mktemp("lm")
    text = tmp_path / "text.txt"
    text.write_text("\n".join(SENTENCES * 20) + "\nunseen words only here\n")
    config = {
        "task": "lm_rnn",
        "data": {"dataset": str(text), "bptt": 5},
        "model": {"embedding_size": 8, "hidden_size": 12, "num_layers": 1},
        "trainer": {"epochs": 1, "max_steps": 3, "batch_size": 4, "progress": False},
        "eval": {"metric": "val_loss", "mode": "min"},
    }
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(write(tmp_path / "lm.yaml", config)), "--out", str(run)]
    )
    assert result.exit_code == 0, result.output
    return run


def classify_config(tmp_path: Path, optim: dict[str, Any] | None = None, **model: Any) -> Path:
    labelled = tmp_path / "labelled.tsv"
    lines = [
        f"{'pos' if 'good' in s else 'neg'}\t{s.upper() if i else s}\n"
        for i, s in enumerate(SENTENCES)
    ]
    labelled.write_text("".join(lines * 3) + "neg\tnovel film\n" * 3)
    config = {
        "task": "classify",
        "data": {
            "dataset": str(labelled),
            "encoding": "utf-8",
            "val_fraction": 0.2,
            "lowercase": False,
        },
        "model": {"name": "rnn", "embedding_size": 8, "hidden_size": 12} | model,
        "optim": optim or {},
        "trainer": {"epochs": 1, "progress": False, "batch_size": 4},
        "eval": {"metric": "val_acc", "mode": "max"},
    }
    return write(tmp_path / "cls.yaml", config)


def started(task_name: str, config: Path, tmp_path: Path) -> tuple[nn.Module, Any]:
    cfg = load_config(config)
    task = TASKS.get(task_name)
    data = task.setup(cfg, tmp_path / "target", train=True)
    model = task.build_model(cfg, data)
    task.start_model(cfg, model, data)
    return model, data


def test_a_language_model_starts_the_classifier(lm_run: Path, tmp_path: Path) -> None:
    lm = load_file(str(lm_run / "best.safetensors"))
    lm_vocab = Vocab.load(lm_run / "vocab.json")
    model, data = started("classify", classify_config(tmp_path, init_from=str(lm_run)), tmp_path)
    # the classifier's vocabulary is in another order and in upper case: rows move by word
    assert data.vocab.itos[:4] != lm_vocab.itos[:4]
    for word in ("DULL", "FILM", "the"):
        torch.testing.assert_close(
            model.embedding.weight[data.vocab.index(word)],
            lm["embedding.weight"][lm_vocab.index(word.lower())],
        )
    assert not torch.equal(model.embedding.weight[0], lm["embedding.weight"][0])  # padding
    novel = [w for w in data.vocab.itos[1:] if w.lower() not in lm_vocab.stoi]
    assert novel == ["novel"]  # keeps its own start
    row = model.embedding.weight[data.vocab.index("novel")]
    assert not any(torch.equal(row, theirs) for theirs in lm["embedding.weight"])
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        torch.testing.assert_close(getattr(model.rnn, name), lm[f"rnn.{name}"])
        assert not torch.equal(getattr(model.rnn, f"{name}_reverse"), lm[f"rnn.{name}"])


def test_a_language_model_starts_the_tagger(
    lm_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TASKS._items, "tagging", TaggingTask())
    rows = "".join(
        f"{i}\t{w}\t_\tX\tX\t_\t0\troot\t_\t_\n" for i, w in enumerate(["the", "dull", "film"], 1)
    )
    (tmp_path / "t.conllu").write_text((rows + "\n") * 4)
    config = {
        "task": "tagging",
        "data": {
            "train": str(tmp_path / "t.conllu"),
            "dev": str(tmp_path / "t.conllu"),
            "test": str(tmp_path / "t.conllu"),
        },
        "model": {
            "embedding_size": 8,
            "hidden_size": 12,
            "num_layers": 1,
            "init_from": str(lm_run),
        },
        "trainer": {"epochs": 1, "progress": False},
    }
    model, data = started("tagging", write(tmp_path / "tag.yaml", config), tmp_path)
    lm = load_file(str(lm_run / "best.safetensors"))
    # layer 0 reads [word embedding (8); character features]: the first 8 columns transfer
    torch.testing.assert_close(model.rnn.weight_ih_l0[:, :8], lm["rnn.weight_ih_l0"])
    assert model.rnn.weight_ih_l0.shape[1] > 8
    torch.testing.assert_close(model.rnn.weight_hh_l0, lm["rnn.weight_hh_l0"])
    index = Vocab.load(lm_run / "vocab.json").index("film")
    torch.testing.assert_close(
        model.embedding.weight[data.vocab.index("film")], lm["embedding.weight"][index]
    )


def test_word2vec_vectors_start_the_embedding_only(tmp_path: Path) -> None:
    source = tmp_path / "w2v"
    source.mkdir()
    write(source / "config.yaml", {"task": "word2vec"})
    vectors = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    save_word2vec(WordVectors(["film", "dull", "elsewhere"], vectors), source / "vectors.txt")
    model, data = started("classify", classify_config(tmp_path, init_from=str(source)), tmp_path)
    torch.testing.assert_close(
        model.embedding.weight[data.vocab.index("DULL")], torch.tensor(vectors[1])
    )
    assert not torch.equal(model.rnn.weight_ih_l0[:, :8], torch.zeros(48, 8))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"embedding_size": 6}, "embedding_size 8 there, 6 here"),
        ({"hidden_size": 10}, "hidden_size 12 there, 10 here"),
        ({"num_layers": 2}, "num_layers 1 there, 2 here"),
        ({"cell": "gru"}, "cell lstm there, gru here"),
    ],
)
def test_size_mismatches_name_what_differs(
    lm_run: Path, tmp_path: Path, model: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        started("classify", classify_config(tmp_path, init_from=str(lm_run), **model), tmp_path)


def test_sources_that_do_not_fit_are_refused(lm_run: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    write(foreign / "config.yaml", {"task": "word2vec"})
    save_word2vec(WordVectors(["xx", "yy"], np.ones((2, 8), np.float32)), foreign / "vectors.txt")
    with pytest.raises(ConfigError, match="none of the .* words here is among its 2 words"):
        started("classify", classify_config(tmp_path, init_from=str(foreign)), tmp_path)
    write(foreign / "config.yaml", {"task": "classify"})
    with pytest.raises(ConfigError, match="a 'classify' run; it must be one of lm_rnn"):
        started("classify", classify_config(tmp_path, init_from=str(foreign)), tmp_path)
    write(foreign / "config.yaml", {"task": "lm_rnn", "model": {"name": "transformer"}})
    with pytest.raises(ConfigError, match="a 'transformer' language model"):
        started("classify", classify_config(tmp_path, init_from=str(foreign)), tmp_path)


def test_a_frozen_transferred_encoder_stays_as_transferred(lm_run: Path, tmp_path: Path) -> None:
    optim = {"freeze": ["embedding", "rnn"], "lr": 0.05}
    config = classify_config(tmp_path, optim, init_from=str(lm_run), bidirectional=False)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "training out" in result.output
    lm = load_file(str(lm_run / "best.safetensors"))
    trained = load_file(str(run / "best.safetensors"))
    torch.testing.assert_close(trained["rnn.weight_hh_l0"], lm["rnn.weight_hh_l0"])
    vocab, lm_vocab = Vocab.load(run / "vocab.json"), Vocab.load(lm_run / "vocab.json")
    torch.testing.assert_close(
        trained["embedding.weight"][vocab.index("FILM")],
        lm["embedding.weight"][lm_vocab.index("film")],
    )
    first = started("classify", config, tmp_path)[0]
    assert not torch.equal(trained["out.weight"], first.out.weight.detach())


def test_the_vocabulary_can_come_from_every_training_sentence(tmp_path: Path) -> None:
    """``data.vocab_from: train_text`` counts the words of the sentences whose labels
    ``train_fraction`` leaves out; ``labelled`` (the default) only those trained on."""
    config = classify_config(tmp_path)
    words = {}
    for source in ("labelled", "train_text"):
        cfg = load_config(config, ["data.train_fraction=0.1", f"data.vocab_from={source}"])
        data = TASKS.get("classify").setup(cfg, tmp_path / source, train=True)
        assert len(data.splits["train"][0]) == 1  # the labels seen are the same
        words[source] = set(data.vocab.itos)
    train_words = {w for t in data.splits["train"][0] for w in t}
    all_text = {v for s in SENTENCES for w in s.split() for v in (w, w.upper())}
    assert train_words <= words["labelled"] < words["train_text"]
    assert words["train_text"] - words["labelled"] <= all_text | {"novel", "film"}
    with pytest.raises(ConfigError, match="vocab_from"):
        load_config(config, ["data.vocab_from=everything"])

"""Task ``tagging`` end to end on tiny files: CLI train/eval/predict, BIO, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.readers import parse_conllu_lines
from seqlab.errors import DataError
from seqlab.loader import load_config
from seqlab.plots import run_confusion
from seqlab.tasks import TASKS
from seqlab.tasks.tagging import TaggingTask, add_ud_comments, read_columns, tag_report

runner = CliRunner()

SENTENCES = [
    [("the", "DET"), ("dog", "NOUN"), ("runs", "VERB"), (".", "PUNCT")],
    [("a", "DET"), ("cat", "NOUN"), ("sleeps", "VERB")],
    [("the", "DET"), ("cat", "NOUN"), ("runs", "VERB"), (".", "PUNCT")],
    [("dogs", "NOUN"), ("sleep", "VERB"), (".", "PUNCT")],
]


def conllu(sentences: list[list[tuple[str, str]]], lemma: str = "_") -> str:
    blocks = []
    for i, sentence in enumerate(sentences):
        lines = [f"# sent_id = s{i}"]
        for j, (word, tag) in enumerate(sentence, 1):
            lines.append(f"{j}\t{word}\t{lemma}\t{tag}\tX{tag}\t_\t0\troot\t_\t_")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


@pytest.fixture(autouse=True)
def register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS._items, "tagging", TaggingTask())


def write_config(tmp_path: Path, **data: object) -> Path:
    train = tmp_path / "train.conllu"
    train.write_text(conllu(SENTENCES * 3))
    (tmp_path / "dev.conllu").write_text(conllu(SENTENCES[:2]))
    cfg = {
        "task": "tagging",
        "data": {
            "train": str(train),
            "dev": str(tmp_path / "dev.conllu"),
            "test": str(tmp_path / "dev.conllu"),
        }
        | data,
        "model": {
            "name": "tagger",
            "embedding_size": 8,
            "hidden_size": 16,
            "char_hidden_size": 8,
            "dropout": 0.0,
        },
        "optim": {"name": "adam", "lr": 0.03},
        "trainer": {"epochs": 15, "batch_size": 4, "progress": False},
        "eval": {"metric": "val_acc", "mode": "max"},
    }
    path = tmp_path / "tag.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_json(output: str) -> dict[str, float]:
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def predict_raw(tmp_path: Path, run: Path, text: str) -> list[list[str]]:
    """``seqlab predict RUN raw.txt`` on ``text``: the CoNLL-U token lines, split."""
    raw = tmp_path / "raw.txt"
    raw.write_text(text)
    result = runner.invoke(app, ["predict", str(run), str(raw)])
    assert result.exit_code == 0, result.output
    return [line.split("\t") for line in result.output.splitlines() if line and line[0] != "#"]


def test_cli_train_eval_predict_round_trip(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    assert metrics["test_acc"] == 100.0
    assert metrics["val_oov_rate"] == 0.0 and metrics["test_long_sentences"] == 0.0
    side = json.loads((run / "tags_test.json").read_text())
    assert side["per_tag"]["NOUN"]["f1"] == 1.0
    assert run_confusion(run, tmp_path / "c.png").stat().st_size > 0

    result = runner.invoke(app, ["eval", str(run), "--json"])
    assert result.exit_code == 0 and last_json(result.output)["test_acc"] == 100.0

    rows = predict_raw(tmp_path, run, "the dog sleeps .\n\na cat runs\n")
    assert [(r[1], r[3]) for r in rows] == [
        ("the", "DET"),
        ("dog", "NOUN"),
        ("sleeps", "VERB"),
        (".", "PUNCT"),
        ("a", "DET"),
        ("cat", "NOUN"),
        ("runs", "VERB"),
    ]

    result = runner.invoke(app, ["predict", str(run), str(tmp_path / "raw.txt")])
    comments = [line for line in result.output.splitlines() if line.startswith("#")]
    assert comments == [  # what UD's validator requires of every sentence
        "# sent_id = 1",
        "# text = the dog sleeps .",
        "# sent_id = 2",
        "# text = a cat runs",
    ]

    given = tmp_path / "in.conllu"
    given.write_text(conllu([[(w, "_") for w, _ in SENTENCES[1]]], lemma="LEM"))
    result = runner.invoke(app, ["predict", str(run), str(given)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# sent_id = s0\n# text = a cat sleeps\n1\t")
    tokens = [line.split("\t") for line in result.output.splitlines() if "\t" in line]
    assert [t[3] for t in tokens] == ["DET", "NOUN", "VERB"]
    assert all(t[2] == "LEM" and t[7] == "root" for t in tokens)  # other columns kept


def test_auxiliary_xpos_column_is_learnt_scored_and_predicted(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg_path = write_config(tmp_path, aux_column="xpos")
    result = runner.invoke(app, ["train", str(cfg_path), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    assert metrics["test_acc"] == 100.0 and metrics["test_aux_acc"] == 100.0
    assert json.loads((run / "aux_tags.json").read_text()) == ["XDET", "XNOUN", "XPUNCT", "XVERB"]

    rows = predict_raw(tmp_path, run, "the dog sleeps .\n")
    assert [(r[3], r[4]) for r in rows] == [
        ("DET", "XDET"),
        ("NOUN", "XNOUN"),
        ("VERB", "XVERB"),
        ("PUNCT", "XPUNCT"),
    ]


def test_lowercase_word_lookups_keep_the_forms_case_in_output(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg_path = write_config(tmp_path, lowercase=True)
    result = runner.invoke(app, ["train", str(cfg_path), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    words = json.loads((run / "vocab.json").read_text())["itos"]
    assert "the" in words and all(w == w.lower() for w in words)
    # unseen forms of known words: not OOV once lower-cased
    rows = predict_raw(tmp_path, run, "The DOG Sleeps .\n")
    assert [(r[1], r[3]) for r in rows] == [
        ("The", "DET"),
        ("DOG", "NOUN"),
        ("Sleeps", "VERB"),
        (".", "PUNCT"),
    ]


def test_auxiliary_column_must_differ_and_needs_conllu(tmp_path: Path) -> None:
    for data, message in (
        ({"aux_column": "upos"}, "must differ"),
        ({"aux_column": "xpos", "format": "columns"}, "needs data.format"),
    ):
        result = runner.invoke(
            app, ["train", str(write_config(tmp_path, **data)), "--out", str(tmp_path / "r")]
        )
        assert result.exit_code != 0 and message in result.output, result.output


def test_long_sentences_unknown_tags_and_broken_lines(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, max_length=2)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(cfg_path), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    assert metrics["val_long_sentences"] == 2.0  # tagged in pieces, every token counted

    odd = tmp_path / "odd.conllu"
    odd.write_text(conllu([[("the", "DET"), ("dog", "INTJ")]]))
    result = runner.invoke(app, ["eval", str(run), "--data", str(odd), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    assert metrics["test_unknown_tags"] == 1.0 and metrics["test_acc"] <= 50.0

    broken = tmp_path / "broken.conllu"
    broken.write_text("1\tthe\t_\tDET\n")
    result = runner.invoke(app, ["eval", str(run), "--data", str(broken)])
    assert result.exit_code != 0
    assert "broken.conllu:1" in result.output and "Traceback" not in result.output


def test_bio_columns_and_span_f1(tmp_path: Path) -> None:
    data = tmp_path / "ner.txt"
    data.write_text("-DOCSTART- O\n\n" + "John B-PER\nSmith I-PER\nvisits O\nParis B-LOC\n\n" * 4)
    cfg = yaml.safe_load(write_config(tmp_path).read_text())
    cfg["data"] = {
        "train": str(data),
        "dev": str(data),
        "test": str(data),
        "format": "columns",
        "scheme": "bio",
    }
    path = tmp_path / "ner.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    assert metrics["test_span_f1"] == 100.0 and metrics["test_acc"] == 100.0

    bad = tmp_path / "bad.txt"
    bad.write_text("John B-PER\nvisits\n")
    with pytest.raises(DataError, match="bad.txt:2"):
        list(read_columns(bad, 0, 1))


def test_tag_report_counts() -> None:
    per_tag, (labels, matrix) = tag_report(["A", "A", "B", "C"], ["A", "B", "B", "A"], ["A", "B"])
    assert labels == ["A", "B", "C"]
    assert matrix == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert per_tag["A"]["precision"] == 0.5 and per_tag["B"]["recall"] == 1.0
    assert per_tag["C"]["f1"] == 0.0


def test_ewt_config_dry_run(tmp_path: Path) -> None:
    cfg = load_config(Path(__file__).parents[2] / "configs" / "ewt_upos.yaml")
    assert cfg.task == "tagging" and cfg.eval.metric == "val_acc"


def test_ud_comments_are_added_where_missing_and_kept_where_given() -> None:
    given = [
        "# newdoc id = d1",
        "# a free comment",
        "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
        "1\tdo\t_\t_\t_\t_\t_\t_\t_\t_",
        "2\tn't\t_\t_\t_\t_\t_\t_\t_\t_",
        "3\tgo\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No",
        "3.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_",
        "4\t!\t_\t_\t_\t_\t_\t_\t_\t_",
        "",
        "# text = Hi there",
        "# sent_id = mine",
        "1\tHi\t_\t_\t_\t_\t_\t_\t_\t_",
        "2\tthere\t_\t_\t_\t_\t_\t_\t_\t_",
    ]
    first, second = (s.tokenlist for s in parse_conllu_lines(given))
    add_ud_comments(first, sent_id="1")
    add_ud_comments(second, sent_id="2")
    assert first.serialize().splitlines()[:4] == [
        "# newdoc id = d1",
        "# sent_id = 1",
        "# text = don't go!",
        "# a free comment",
    ]
    assert second.serialize().splitlines()[:2] == ["# text = Hi there", "# sent_id = mine"]


def test_eval_set_overrides_an_evaluation_setting(tmp_path: Path) -> None:
    """`seqlab eval RUN --set data.eval_batch_size=1`: one sentence a batch, same scores."""
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--out", str(run)])
    assert result.exit_code == 0, result.output
    plain = runner.invoke(app, ["eval", str(run), "--split", "val", "--json"])
    args = ["eval", str(run), "--split", "val", "--set", "data.eval_batch_size=1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert last_json(result.output) == pytest.approx(last_json(plain.output), rel=1e-6)
    bad = runner.invoke(app, ["eval", str(run), "--set", "data.eval_batch_size=0"])
    assert bad.exit_code == 2 and "eval_batch_size" in bad.output

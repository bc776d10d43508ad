"""The word2vec corpus built from the datasets' training splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.corpus import SOURCES, build_corpus
from seqlab.data.readers import read_trees
from seqlab.data.sources import resolve
from seqlab.errors import DataError


def test_sst_and_multi30k_training_text(tmp_path: Path, shared_data: Path) -> None:
    counts = build_corpus(tmp_path, ["sst", "multi30k"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi30k.txt", "sst.txt"]
    sst = (tmp_path / "sst.txt").read_text(encoding="utf-8").splitlines()
    trees = list(read_trees(resolve("sst", "train")))
    assert len(sst) == len(trees) == counts["sst"]["lines"] == 8544
    assert sst[0] == " ".join(trees[0].leaves()).lower()
    assert counts["sst"]["tokens"] == sum(len(t.leaves()) for t in trees)
    captions = (tmp_path / "multi30k.txt").read_text(encoding="utf-8").splitlines()
    assert (counts["multi30k"]["lines"], counts["multi30k"]["empty"]) == (29000, 0)
    assert captions[0] == "two young , white males are outside near many bushes ."
    assert sum(len(line.split(" ")) for line in captions) == counts["multi30k"]["tokens"]


def test_cased_output_keeps_case(tmp_path: Path, shared_data: Path) -> None:
    build_corpus(tmp_path, ["multi30k"], lowercase=False)
    first = (tmp_path / "multi30k.txt").read_text(encoding="utf-8").splitlines()[0]
    assert first == "Two young , White males are outside near many bushes ."


def test_unknown_source_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no corpus source for 'rt_polarity'.*known: ptb"):
        build_corpus(tmp_path, ["sst", "rt_polarity"])
    with pytest.raises(DataError, match="at least one"):
        build_corpus(tmp_path, [])
    assert not list(tmp_path.iterdir())
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        build_corpus(tmp_path / "file", ["sst"])
    assert set(SOURCES) == {"ptb", "ud_english_ewt", "sst", "multi30k"}


def test_cli_writes_the_corpus_and_reports_counts(tmp_path: Path, shared_data: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["data", "corpus", str(tmp_path / "c"), "-d", "sst", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["sources"]["sst"]["lines"] == 8544
    assert report["tokens"] == report["sources"]["sst"]["tokens"]
    bad = runner.invoke(app, ["data", "corpus", str(tmp_path / "d"), "-d", "nope"])
    assert bad.exit_code == 2
    assert "no corpus source for 'nope'" in bad.output

"""`seqlab data list`: the "found" column says where each dataset was found."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from seqlab.cli import app

runner = CliRunner()


def table_cells(output: str) -> dict[str, list[str]]:
    """The body rows of a rich table, by their first cell; a cell wrapped over several
    lines is joined back together."""
    rows: dict[str, list[str]] = {}
    name = ""
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:
            name = cells[0]
            rows[name] = cells
        else:
            rows[name] = [kept + more for kept, more in zip(rows[name], cells, strict=True)]
    return rows


def test_data_list_shows_where_each_dataset_was_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ptb = tmp_path / "data" / "ptb"
    ptb.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (ptb / f"ptb.{split}.txt").write_text(" the cat sat \n", encoding="utf-8")
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    rows = table_cells(result.stdout)
    assert rows["ptb"][3] == str(ptb.resolve())
    assert rows["wikitext2"][3] == "not found"  # download only: absent until fetched

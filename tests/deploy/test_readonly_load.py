"""Loading a finished run (as `seqlab serve` and `seqlab predict` do) leaves its run dir
exactly as it was: no file is written, rewritten or added."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from seqlab.evaluation import LoadedRun


def snapshot(run_dir: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(run_dir)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("kind", ["cnn", "tagger_crf", "babi"])
def test_loading_a_run_changes_nothing_in_its_run_dir(
    kind: str, request: pytest.FixtureRequest
) -> None:
    run_dir: Path = request.getfixturevalue(kind)
    before = snapshot(run_dir)
    run = LoadedRun.load(run_dir)
    assert run.model is not None
    assert snapshot(run_dir) == before

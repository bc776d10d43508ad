from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from seqlab.data.vocab import Vocab
from seqlab.io import atomic_open, atomic_write_text
from seqlab.train.checkpoint import save_checkpoint, save_weights


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_honour_the_umask(tmp_path: Path, umask: int) -> None:
    """A run dir's files get 0o666 less the umask, like any new file (not mkstemp's 0o600)."""
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
        save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
        save_weights(tmp_path / "best.safetensors", torch.nn.Linear(2, 2))
        Vocab.build([["a", "b"]]).save(tmp_path / "vocab.json")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert _mode(plain) == expected
    for name in ("config.yaml", "checkpoint.pt", "best.safetensors", "vocab.json"):
        assert _mode(tmp_path / name) == expected, name


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("new, half written")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_open_refuses_append(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whole file"), atomic_open(tmp_path / "x", "a"):
        pass

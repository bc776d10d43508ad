from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from seqlab import io
from seqlab.errors import RunDirError
from seqlab.train import checkpoint
from seqlab.train.checkpoint import load_checkpoint, save_checkpoint


def test_crash_mid_save_leaves_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # temp file removed


def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunDirError, match="checkpoint is unreadable"):
        load_checkpoint(path)
    with pytest.raises(RunDirError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trip() -> None:
    state = checkpoint.rng_state()
    a = torch.rand(3)
    checkpoint.set_rng_state(state)
    assert torch.equal(torch.rand(3), a)
    assert os.path.exists(os.devnull)


class WritesAFile:
    """Unpickling this runs ``open(marker, "w")``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path, marker = tmp_path / "checkpoint.pt", tmp_path / "pwned"
    torch.save({"model": {"w": torch.ones(2)}, "rng": WritesAFile(marker)}, path)
    with pytest.raises(RunDirError, match=rf"^{path}: checkpoint refused: .*GLOBAL io.open") as err:
        load_checkpoint(path)
    assert len(str(err.value).splitlines()) == 1
    assert not marker.exists()
    torch.load(path, weights_only=False)["rng"].close()  # the old loader ran its code
    assert marker.exists()


def draws() -> tuple[float, float, float]:
    """One draw from every RNG a checkpoint restores (numpy's cached Gaussian included)."""
    return random.random(), float(np.random.standard_normal()), float(torch.rand(()))


def test_rng_states_need_no_allow_list_and_resume_exactly(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    np.random.standard_normal()  # odd count: numpy now caches the second Gaussian
    save_checkpoint(path, {"rng": checkpoint.rng_state()})
    expected = [draws() for _ in range(3)]
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    checkpoint.set_rng_state(torch.load(path, weights_only=True)["rng"])
    assert [draws() for _ in range(3)] == expected


def test_checkpoints_from_before_weights_only_still_resume(tmp_path: Path) -> None:
    """Older checkpoints hold numpy's state as an ndarray: read with numpy's globals only."""
    path = tmp_path / "checkpoint.pt"
    legacy = checkpoint.rng_state() | {"numpy": np.random.get_state()}
    torch.save({"rng": legacy}, path)
    expected = draws()
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))) == {
        "numpy._core.multiarray._reconstruct",
        "numpy.dtype",
        "numpy.ndarray",
    }
    checkpoint.set_rng_state(load_checkpoint(path)["rng"])
    assert draws() == expected

"""FSDD: names, FSDD's own split (test = indices 0-4), validation out of the training
indices, utterance composition deterministic by seed and confined to its split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from seqlab.data.fsdd import (
    AudioBank,
    ComposeConfig,
    compose,
    list_recordings,
    split_recordings,
)
from seqlab.errors import DataError


def write_recordings(folder: Path, speakers: tuple[str, ...] = ("ann", "bob")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for speaker in speakers:
        for digit in range(10):
            for index in range(12):
                samples = np.full(400 + 10 * index, digit + 1, dtype=np.int16)
                wavfile.write(folder / f"{digit}_{speaker}_{index}.wav", 8000, samples)


def test_split_by_recording_index(tmp_path: Path) -> None:
    write_recordings(tmp_path)
    splits = split_recordings(list_recordings(tmp_path), (5, 6))
    assert {r.index for r in splits["test"]} == {0, 1, 2, 3, 4}
    assert {r.index for r in splits["val"]} == {5, 6}
    assert {r.index for r in splits["train"]} == set(range(7, 12))
    assert len(splits["test"]) == 2 * 10 * 5
    with pytest.raises(DataError, match=r"validation indices \[3, 4\] are FSDD test"):
        split_recordings(list_recordings(tmp_path), (3, 4, 5))


def test_bad_folder_and_names(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="recordings folder not found"):
        list_recordings(tmp_path / "none")
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="no wav files"):
        list_recordings(tmp_path / "x")
    (tmp_path / "x" / "hello.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"hello\.wav: not an FSDD name"):
        list_recordings(tmp_path / "x")


def test_composition_is_deterministic_and_stays_in_its_split(tmp_path: Path) -> None:
    write_recordings(tmp_path)
    splits = split_recordings(list_recordings(tmp_path), (5, 6))
    cfg = ComposeConfig()
    test = compose(splits["test"], 200, cfg, seed=7)
    assert test == compose(splits["test"], 200, cfg, seed=7)
    assert test != compose(splits["test"], 200, cfg, seed=8)
    for utterance in test:
        assert all(r.index in range(5) for r in utterance.recordings)  # test recordings only
        assert {r.speaker for r in utterance.recordings} == {utterance.speaker}  # one speaker
        assert [r.digit for r in utterance.recordings] == list(utterance.digits)
        assert 1 <= len(utterance.digits) <= 7
        assert len(utterance.gaps) == len(utterance.digits) + 1
        assert all(0.05 <= g <= 0.3 for g in utterance.gaps[1:-1])
    assert {len(u.digits) for u in test} == set(range(1, 8))  # every length occurs
    assert {d for u in test for d in u.digits} == set(range(10))


def test_render_joins_recordings_with_silences(tmp_path: Path) -> None:
    write_recordings(tmp_path, ("ann",))
    recordings = list_recordings(tmp_path)
    [utterance] = compose(recordings, 1, ComposeConfig(min_digits=3, max_digits=3), seed=1)
    samples = AudioBank(8000).render(utterance)
    gaps = [round(g * 8000) for g in utterance.gaps]
    lengths = [400 + 10 * r.index for r in utterance.recordings]
    assert len(samples) == sum(gaps) + sum(lengths)
    start = gaps[0]
    for digit, length, gap in zip(utterance.digits, lengths, gaps[1:], strict=True):
        np.testing.assert_allclose(samples[start : start + length], (digit + 1) / 32768)
        assert not samples[start + length : start + length + gap].any()  # silence
        start += length + gap


def test_real_fsdd_split_sizes(shared_data: Path) -> None:
    recordings = list_recordings(shared_data / "fsdd" / "recordings")
    splits = split_recordings(recordings, (5, 6, 7, 8, 9))
    assert [len(splits[s]) for s in ("train", "val", "test")] == [2000, 250, 250]
    assert {r.speaker for r in splits["test"]} == {
        "george",
        "jackson",
        "nicolas",
        "theo",
        "yweweler",
    }

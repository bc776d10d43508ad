"""The Free Spoken Digit Dataset (FSDD) and spoken digit strings composed from it.

FSDD's files are ``recordings/{digit}_{speaker}_{index}.wav`` (8 kHz mono). Its own split:
recording indices 0-4 are the test set, the rest training; the validation set is taken out
of the training indices (``val_indices``), never out of the test ones.

An utterance is 1-7 digits of one speaker: for each position a digit is drawn, then one of
that speaker's recordings of it from the split's recordings, and the recordings are joined
with short random silences (and a short silence before and after). Everything is drawn
from ``random.Random(seed)``, so the same seed gives the same utterances.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.data.audio import read_wav
from seqlab.errors import DataError

NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[A-Za-z]+)_(?P<index>[0-9]+)\.wav")
TEST_INDICES = range(0, 5)
"""FSDD's own test recordings: indices 0-4 of every digit and speaker."""


@dataclass(frozen=True)
class Recording:
    digit: int
    speaker: str
    index: int
    path: Path


def list_recordings(folder: Path) -> list[Recording]:
    """Every ``{digit}_{speaker}_{index}.wav`` in ``folder`` (sorted by name)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: FSDD recordings folder not found")
    found = []
    for path in sorted(folder.glob("*.wav")):
        match = NAME.fullmatch(path.name)
        if match is None:
            raise DataError(f"{path}: not an FSDD name ({{digit}}_{{speaker}}_{{index}}.wav)")
        found.append(Recording(int(match["digit"]), match["speaker"], int(match["index"]), path))
    if not found:
        raise DataError(f"{folder}: no wav files")
    return found


def split_of(index: int, val_indices: Sequence[int]) -> str:
    """``test`` for FSDD's test indices (0-4), ``val`` for ``val_indices``, else ``train``."""
    if index in TEST_INDICES:
        return "test"
    return "val" if index in val_indices else "train"


def split_recordings(
    recordings: Sequence[Recording], val_indices: Sequence[int]
) -> dict[str, list[Recording]]:
    """The recordings of each split (``val_indices`` must not touch the test indices)."""
    clash = sorted(set(val_indices) & set(TEST_INDICES))
    if clash:
        raise DataError(f"validation indices {clash} are FSDD test recordings (0-4)")
    splits: dict[str, list[Recording]] = {"train": [], "val": [], "test": []}
    for recording in recordings:
        splits[split_of(recording.index, val_indices)].append(recording)
    return splits


@dataclass(frozen=True)
class Utterance:
    """A composed utterance: its digits and, for each, the recording used."""

    speaker: str
    digits: tuple[int, ...]
    recordings: tuple[Recording, ...]
    gaps: tuple[float, ...]
    """Seconds of silence before, between and after the recordings (len(digits) + 1)."""

    @property
    def text(self) -> str:
        return "".join(str(d) for d in self.digits)


@dataclass(frozen=True)
class ComposeConfig:
    min_digits: int = 1
    max_digits: int = 7
    min_gap: float = 0.05
    """Seconds of silence between two recordings, drawn uniformly in [min_gap, max_gap]."""
    max_gap: float = 0.3
    edge: float = 0.1
    """Up to this many seconds of silence before the first and after the last recording."""


def compose(
    recordings: Sequence[Recording], count: int, cfg: ComposeConfig, seed: int
) -> list[Utterance]:
    """``count`` utterances from ``recordings`` (one split's), deterministic by ``seed``."""
    pool: dict[str, dict[int, list[Recording]]] = defaultdict(lambda: defaultdict(list))
    for recording in recordings:
        pool[recording.speaker][recording.digit].append(recording)
    speakers = sorted(pool)
    if not speakers:
        raise DataError("no recordings to compose utterances from")
    rng = random.Random(seed)
    utterances = []
    for _ in range(count):
        speaker = speakers[rng.randrange(len(speakers))]
        digits_of = pool[speaker]
        available = sorted(digits_of)
        length = rng.randint(cfg.min_digits, cfg.max_digits)
        digits = tuple(available[rng.randrange(len(available))] for _ in range(length))
        chosen = tuple(digits_of[d][rng.randrange(len(digits_of[d]))] for d in digits)
        gaps = (
            (rng.uniform(0.0, cfg.edge),)
            + tuple(rng.uniform(cfg.min_gap, cfg.max_gap) for _ in range(length - 1))
            + (rng.uniform(0.0, cfg.edge),)
        )
        utterances.append(Utterance(speaker, digits, chosen, gaps))
    return utterances


class AudioBank:
    """Recordings' samples read once and kept (FSDD is ~35 MB as float32 at 8 kHz)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._samples: dict[Path, np.ndarray] = {}

    def samples(self, recording: Recording) -> np.ndarray:
        if recording.path not in self._samples:
            self._samples[recording.path] = read_wav(recording.path, self.rate)
        return self._samples[recording.path]

    def render(self, utterance: Utterance) -> np.ndarray:
        """(N,) the utterance's samples: silence, recording, silence, ..., silence."""
        pieces = []
        for gap, recording in zip(utterance.gaps, utterance.recordings, strict=False):
            pieces.append(np.zeros(round(gap * self.rate), dtype=np.float32))
            pieces.append(self.samples(recording))
        pieces.append(np.zeros(round(utterance.gaps[-1] * self.rate), dtype=np.float32))
        return np.concatenate(pieces)

"""Wav input: integer and float formats, stereo mixed down, any rate resampled, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from seqlab.data.audio import read_wav
from seqlab.errors import DataError


def tone(freq: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_int16_mono_reads_to_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    wavfile.write(path, 8000, np.array([0, 16384, -32768, 32767], dtype=np.int16))
    np.testing.assert_allclose(read_wav(path, 8000), [0.0, 0.5, -1.0, 32767 / 32768])


def test_uint8_is_centred(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    wavfile.write(path, 8000, np.array([128, 192, 0], dtype=np.uint8))
    np.testing.assert_allclose(read_wav(path, 8000), [0.0, 0.5, -1.0])


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left, right = tone(440, 8000), tone(1000, 8000)
    wavfile.write(path, 8000, np.stack([left, right], axis=1))
    np.testing.assert_allclose(read_wav(path, 8000), (left + right) / 2, atol=1e-6)


def test_other_rates_are_resampled_keeping_the_pitch(tmp_path: Path) -> None:
    path = tmp_path / "hi.wav"
    wavfile.write(path, 44100, (tone(700, 44100) * 32767).astype(np.int16))
    samples = read_wav(path, 8000)
    assert len(samples) == 4000  # 0.5 s at 8 kHz
    assert abs(peak_hz(samples, 8000) - 700) <= 2
    path = tmp_path / "lo.wav"
    wavfile.write(path, 6000, tone(500, 6000))
    assert len(read_wav(path, 8000)) == 4000


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.wav: wav file not found"):
        read_wav(tmp_path / "missing.wav", 8000)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    with pytest.raises(DataError, match=r"notes\.wav: not a readable wav file"):
        read_wav(text, 8000)
    empty = tmp_path / "empty.wav"
    wavfile.write(empty, 8000, np.zeros(0, dtype=np.int16))
    with pytest.raises(DataError, match=r"empty\.wav: the wav file holds no samples"):
        read_wav(empty, 8000)

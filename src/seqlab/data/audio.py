"""Audio input: wav files read as mono float samples at a chosen sample rate.

``read_wav(path, rate)`` accepts PCM (8/16/24/32-bit integer) and float wav files of any
sample rate and channel count: channels are averaged (stereo is mixed down) and the
samples are resampled to ``rate`` with a polyphase filter (``scipy.signal.resample_poly``).
A file that is missing, not a wav, or holds no samples is a :class:`DataError` naming it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from seqlab.errors import DataError


def to_float(samples: np.ndarray) -> np.ndarray:
    """Samples in [-1, 1] as float32, whatever the wav's integer or float format."""
    if samples.dtype == np.uint8:  # 8-bit wav is unsigned, centred on 128
        return ((samples.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if np.issubdtype(samples.dtype, np.integer):
        return (samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)).astype(np.float32)
    return samples.astype(np.float32)


def mix_down(samples: np.ndarray) -> np.ndarray:
    """(N,) mono samples from (N,) or (N, channels): the mean of the channels."""
    return samples if samples.ndim == 1 else samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` at ``rate`` Hz resampled to ``target`` Hz (polyphase, anti-aliased)."""
    if rate == target:
        return samples
    common = math.gcd(rate, target)
    return resample_poly(samples, target // common, rate // common).astype(np.float32)


def read_wav(path: str | Path, rate: int) -> np.ndarray:
    """(N,) float32 mono samples of the wav file ``path`` at ``rate`` Hz."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: wav file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)  # unknown chunks
            file_rate, samples = wavfile.read(path)
    except (ValueError, EOFError, OSError) as err:
        raise DataError(f"{path}: not a readable wav file ({err})") from None
    if samples.size == 0:
        raise DataError(f"{path}: the wav file holds no samples")
    if samples.ndim > 2:
        raise DataError(f"{path}: unexpected sample array of shape {samples.shape}")
    mono = mix_down(to_float(samples))
    if not np.isfinite(mono).all():
        raise DataError(f"{path}: the wav file holds NaN or infinite samples")
    return resample(mono, int(file_rate), rate)

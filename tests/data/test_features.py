"""Log-mel features: frame count, the mel filters, a tone lands in its mel bin, determinism,
per-utterance normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlab.data.features import LogMel, LogMelConfig, hz_to_mel, mel_filterbank, mel_to_hz
from seqlab.errors import ConfigError


def test_shape_is_one_frame_per_hop() -> None:
    logmel = LogMel(LogMelConfig())
    for samples in (1, 100, 8000, 12345):
        features = logmel(np.random.default_rng(0).normal(size=samples).astype(np.float32))
        assert features.shape == (1 + max(samples, 129) // 80, 40)
        assert logmel.frames(samples) == features.shape[0]


def test_mel_scale_round_trip_and_filters() -> None:
    hz = torch.tensor([0.0, 700.0, 4000.0], dtype=torch.float64)
    torch.testing.assert_close(mel_to_hz(hz_to_mel(hz)), hz)
    assert float(hz_to_mel(torch.tensor(1000.0))) == pytest.approx(999.99, abs=0.1)
    filters = mel_filterbank(10, 256, 8000, 0.0, 4000.0)
    assert filters.shape == (10, 129)
    assert float(filters.max()) <= 1.0 and float(filters.min()) == 0.0
    peaks = filters.argmax(dim=1)
    assert bool((peaks[1:] > peaks[:-1]).all())  # centres rise with the filter index
    widths = (filters > 0).sum(dim=1)
    assert int(widths[-1]) > int(widths[0])  # wider in Hz at the top, as the mel scale is


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_a_tone_peaks_in_the_mel_bin_centred_nearest_it(freq: float) -> None:
    cfg = LogMelConfig(normalise="none")
    t = np.arange(8000) / 8000
    features = LogMel(cfg)(np.sin(2 * np.pi * freq * t).astype(np.float32))
    edges = mel_to_hz(
        torch.linspace(float(hz_to_mel(torch.tensor(20.0))), 2595 * np.log10(1 + 4000 / 700), 42)
    )
    nearest = int((edges[1:-1] - freq).abs().argmin())
    assert int(features[20:-20].mean(0).argmax()) == nearest


def test_deterministic_and_normalised_per_utterance() -> None:
    samples = np.random.default_rng(1).normal(size=4000).astype(np.float32)
    logmel = LogMel(LogMelConfig())
    first, second = logmel(samples), logmel(samples)
    assert torch.equal(first, second)
    torch.testing.assert_close(first.mean(0), torch.zeros(40), atol=1e-4, rtol=0)
    torch.testing.assert_close(first.std(0, unbiased=False), torch.ones(40), atol=1e-3, rtol=0)
    louder = logmel(samples * 10)  # a gain is a constant in the log domain: normalised away
    torch.testing.assert_close(louder, first, atol=1e-3, rtol=0)


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="win_length <= n_fft"):
        LogMel(LogMelConfig(win_length=512, n_fft=256))
    with pytest.raises(ConfigError, match="f_min < f_max"):
        LogMel(LogMelConfig(f_min=5000.0))

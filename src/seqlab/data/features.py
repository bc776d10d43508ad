r"""Log-mel filterbank features over ``torch.stft``.

.. code-block:: text

    X[t, f]   = STFT of the samples (Hann window of ``win_length``, hop ``hop_length``)
    P[t, f]   = |X[t, f]|^2                                           power spectrum (T, F)
    mel(h)    = 2595 log10(1 + h / 700)                               HTK mel scale
    W[m, f]   = triangle of filter m over FFT bin f; the M + 2 edges are equally spaced
                on the mel scale between f_min and f_max; peak 1 at its centre
    S[t, m]   = log(sum_f W[m, f] P[t, f] + floor)                    log-mel (T, M)
    normalise: ``utterance``: (S - mean_t S) / std_t S per mel bin; ``none``: S as it is

T frames = 1 + N // hop_length (the signal is padded by n_fft // 2 on both sides, by
reflection; a signal of N <= n_fft // 2 samples is first zero-padded to n_fft // 2 + 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from seqlab.errors import ConfigError


def hz_to_mel(hz: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, rate: int, f_min: float, f_max: float) -> Tensor:
    """Triangular filters W (n_mels, n_fft // 2 + 1) on the HTK mel scale."""
    bins = torch.linspace(0.0, rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)  # (F,)
    edges = mel_to_hz(
        torch.linspace(
            float(hz_to_mel(torch.tensor(f_min))),
            float(hz_to_mel(torch.tensor(f_max))),
            n_mels + 2,
            dtype=torch.float64,
        )
    )  # (M + 2,)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1)
    rising = (bins[None, :] - low) / (centre - low)
    falling = (high - bins[None, :]) / (high - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()  # (M, F)


@dataclass(frozen=True)
class LogMelConfig:
    """Log-mel features: 25 ms windows every 10 ms at 8 kHz, 40 mel bins by default."""

    rate: int = 8000
    n_fft: int = 256
    win_length: int = 200
    hop_length: int = 80
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float | None = None
    """Upper edge of the top filter (None: the Nyquist frequency, rate / 2)."""
    floor: float = 1e-6
    normalise: Literal["utterance", "none"] = "utterance"

    def validate(self) -> None:
        if self.win_length > self.n_fft or min(self.hop_length, self.n_mels, self.rate) < 1:
            raise ConfigError(
                "features: need win_length <= n_fft and hop_length, n_mels, rate >= 1"
            )
        top = self.f_max if self.f_max is not None else self.rate / 2
        if not 0 <= self.f_min < top <= self.rate / 2:
            raise ConfigError(f"features: need 0 <= f_min < f_max <= rate / 2, got {self.f_min}")


class LogMel:
    """``LogMel(cfg)(samples (N,)) -> features (T, n_mels)`` (float32, on the CPU)."""

    def __init__(self, cfg: LogMelConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        top = cfg.f_max if cfg.f_max is not None else cfg.rate / 2
        self.filters = mel_filterbank(cfg.n_mels, cfg.n_fft, cfg.rate, cfg.f_min, top)
        self.window = torch.hann_window(cfg.win_length)

    def frames(self, num_samples: int) -> int:
        """How many frames ``num_samples`` samples give (very short inputs are first padded
        with zeros to n_fft // 2 + 1 samples, the least the reflect padding needs)."""
        return 1 + max(num_samples, self.cfg.n_fft // 2 + 1) // self.cfg.hop_length

    def __call__(self, samples: np.ndarray | Tensor) -> Tensor:
        cfg = self.cfg
        signal = torch.as_tensor(samples, dtype=torch.float32)
        if signal.dim() != 1 or signal.numel() == 0:
            raise ValueError(f"LogMel expects (N,) samples with N > 0, got {tuple(signal.shape)}")
        if signal.numel() <= cfg.n_fft // 2:  # reflect padding needs more samples than this
            signal = torch.nn.functional.pad(signal, (0, cfg.n_fft // 2 + 1 - signal.numel()))
        spectrum = torch.stft(
            signal,
            cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=True,
            return_complex=True,
        )  # (F, T)
        power = spectrum.abs().pow(2)  # (F, T)
        features = torch.log(self.filters @ power + cfg.floor).T  # (T, M)
        if cfg.normalise == "utterance":
            mean = features.mean(dim=0, keepdim=True)
            std = features.std(dim=0, keepdim=True, unbiased=False)
            features = (features - mean) / (std + 1e-5)
        return features.contiguous()

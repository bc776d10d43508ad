"""Multi-digit scenes with captions, composed from scikit-learn's handwritten digits.

scikit-learn ships the UCI optical digits (1,797 grey images of 8x8 pixels, values 0-16).
The images are split once by a seeded permutation (70% train, 15% validation, 15% test),
so a test scene holds test images only. A scene is a ``height x width`` canvas with 2-5
digits at random positions, left to right without overlapping columns (so "left to right"
is one order); its caption names the count and the digits in that order:

    "three digits : 4 1 7"

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed, the same scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqlab.errors import ConfigError

COUNT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGIT_SIZE = 8


@dataclass(frozen=True)
class SceneConfig:
    height: int = 16
    width: int = 48
    min_digits: int = 2
    max_digits: int = 5
    train_fraction: float = 0.7
    val_fraction: float = 0.15

    def validate(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits <= 9:
            raise ConfigError("scenes: need 1 <= min_digits <= max_digits <= 9")
        if self.height < DIGIT_SIZE or self.width < DIGIT_SIZE * self.max_digits:
            raise ConfigError(
                f"scenes: a {self.height}x{self.width} canvas cannot hold {self.max_digits} "
                f"digits of {DIGIT_SIZE}x{DIGIT_SIZE} side by side"
            )
        positive = self.train_fraction > 0 and self.val_fraction > 0
        if not positive or self.train_fraction + self.val_fraction >= 1:
            raise ConfigError("scenes: need fractions > 0 with train + val fraction < 1")


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) float32 in [0, 1], labels (1797,)) from scikit-learn."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def split_images(count: int, cfg: SceneConfig, seed: int) -> dict[str, np.ndarray]:
    """Image indices of each split: a seeded permutation cut into train / val / test."""
    order = np.random.default_rng(seed).permutation(count)
    train_end = int(round(cfg.train_fraction * count))
    val_end = train_end + int(round(cfg.val_fraction * count))
    return {"train": order[:train_end], "val": order[train_end:val_end], "test": order[val_end:]}


@dataclass(frozen=True)
class Scenes:
    images: np.ndarray  # (N, height, width) float32 in [0, 1]
    digits: list[list[int]]  # the digits of each scene, left to right
    sources: list[list[int]]  # the image index of each digit

    @property
    def captions(self) -> list[str]:
        return [caption(d) for d in self.digits]


def caption(digits: list[int]) -> str:
    """``[4, 1, 7]`` -> ``"three digits : 4 1 7"``."""
    return f"{COUNT_WORDS[len(digits)]} digits : " + " ".join(str(d) for d in digits)


def compose_scenes(
    images: np.ndarray,
    labels: np.ndarray,
    pool: np.ndarray,
    count: int,
    cfg: SceneConfig,
    seed: int,
) -> Scenes:
    """``count`` scenes from the images ``pool`` (indices into ``images``)."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((count, cfg.height, cfg.width), dtype=np.float32)
    all_digits, all_sources = [], []
    for n in range(count):
        k = int(rng.integers(cfg.min_digits, cfg.max_digits + 1))
        chosen = rng.choice(pool, size=k, replace=False)
        # the free columns are split into k + 1 random gaps around the k digits
        slack = cfg.width - DIGIT_SIZE * k
        cuts = np.sort(rng.integers(0, slack + 1, size=k))
        xs = cuts + DIGIT_SIZE * np.arange(k)
        ys = rng.integers(0, cfg.height - DIGIT_SIZE + 1, size=k)
        for index, x, y in zip(chosen, xs, ys, strict=True):
            canvas[n, y : y + DIGIT_SIZE, x : x + DIGIT_SIZE] = images[index]
        all_digits.append([int(labels[i]) for i in chosen])
        all_sources.append([int(i) for i in chosen])
    return Scenes(canvas, all_digits, all_sources)

"""2D maps of word vectors: PCA and t-SNE side by side, each point labelled by its word.

PCA is the projection on the two leading principal components. t-SNE (van der Maaten &
Hinton 2008) is implemented exactly here in numpy (O(N^2) memory), which is right for the
tens to hundreds of words such a figure can label; it is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from seqlab.embeddings.vectors_io import WordVectors
from seqlab.errors import DataError

DEFAULT_WORDS = (
    "king", "queen", "man", "woman", "boy", "girl", "father", "mother", "he", "she",
    "japan", "tokyo", "france", "paris", "china", "beijing", "britain", "london",
    "monday", "friday", "january", "march", "dollar", "yen", "stock", "bond",
)  # fmt: skip
"""Words drawn when none are given (those in the vocabulary)."""

_TSNE_STEPS = 1000
_EXAGGERATION = 12.0
_EXAGGERATION_STEPS = 250


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, 2) coordinates on the two leading principal components."""
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ components[:2].T
    if coords.shape[1] < 2:  # a single component (D == 1 or N == 2)
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords


def _conditional_probabilities(sq_dist: np.ndarray, perplexity: float) -> np.ndarray:
    """(N, N) rows ``P(j|i)`` of Gaussian kernels whose entropy is ``log(perplexity)``."""
    n = len(sq_dist)
    target = np.log(perplexity)
    probs = np.zeros((n, n))
    for i in range(n):
        dist = np.delete(sq_dist[i], i)
        dist = dist - dist.min()
        lo, hi, beta = 0.0, np.inf, 1.0
        for _ in range(100):  # binary search on the precision beta = 1 / (2 sigma^2)
            weights = np.exp(-dist * beta)
            total = weights.sum()
            row = weights / total
            entropy = np.log(total) + beta * float(dist @ row)
            if abs(entropy - target) < 1e-5:
                break
            if entropy > target:
                lo, beta = beta, beta * 2 if hi == np.inf else (beta + hi) / 2
            else:
                hi, beta = beta, (beta + lo) / 2
        probs[i, np.arange(n) != i] = row
    return probs


def tsne_2d(vectors: np.ndarray, perplexity: float | None = None, seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) exact t-SNE embedding (N >= 3).

    ``perplexity`` defaults to ``min(30, (N - 1) / 3)`` (at least 1). Optimisation as in
    the paper and scikit-learn: PCA initialisation, early exaggeration 12 for 250 steps,
    momentum 0.5 then 0.8, adaptive gains, learning rate ``max(N / 48, 50)``.
    """
    n = len(vectors)
    if n < 3:
        raise ValueError("t-SNE needs at least 3 points")
    if perplexity is None:
        perplexity = min(30.0, max(1.0, (n - 1) / 3))
    data = vectors.astype(np.float64)
    sq_dist = ((data[:, None, :] - data[None, :, :]) ** 2).sum(-1)
    cond = _conditional_probabilities(sq_dist, perplexity)
    joint = np.maximum((cond + cond.T) / (2 * n), 1e-12)
    init = pca_2d(data)
    rng = np.random.default_rng(seed)
    coords = init / (init[:, 0].std() or 1.0) * 1e-4 + rng.normal(0, 1e-8, (n, 2))
    update = np.zeros_like(coords)
    gains = np.ones_like(coords)
    rate = max(n / _EXAGGERATION / 4, 50.0)
    for step in range(_TSNE_STEPS):
        early = step < _EXAGGERATION_STEPS
        diff = coords[:, None, :] - coords[None, :, :]  # (N, N, 2)
        kernel = 1.0 / (1.0 + (diff**2).sum(-1))
        np.fill_diagonal(kernel, 0.0)
        q = np.maximum(kernel / kernel.sum(), 1e-12)
        p = joint * _EXAGGERATION if early else joint
        grad = 4.0 * (((p - q) * kernel)[:, :, None] * diff).sum(axis=1)
        same_sign = np.sign(grad) == np.sign(update)
        gains = np.maximum(np.where(same_sign, gains * 0.8, gains + 0.2), 0.01)
        update = (0.5 if early else 0.8) * update - rate * gains * grad
        coords = coords + update
    return coords - coords.mean(axis=0)


def select_words(wv: WordVectors, words: Sequence[str] | None) -> list[str]:
    """The words to draw: all of ``words`` (error if any is missing), or the
    :data:`DEFAULT_WORDS` present (the 30 most frequent words if fewer than 4 are)."""
    if words:
        missing = [w for w in words if w not in wv]
        if missing:
            raise DataError(f"not in the vocabulary of {len(wv)} words: {', '.join(missing)}")
        chosen = list(dict.fromkeys(words))
    else:
        chosen = [w for w in DEFAULT_WORDS if w in wv]
        if len(chosen) < 4:
            chosen = wv.words[:30]
    if len(chosen) < 3:
        raise DataError(f"need at least 3 distinct words to draw a map, got {len(chosen)}")
    return chosen


def plot_embedding_map(
    wv: WordVectors, out: str | Path, words: Sequence[str] | None = None, title: str = ""
) -> Path:
    """Write a PNG with the PCA map (left) and the t-SNE map (right) of ``words``."""
    chosen = select_words(wv, words)
    vectors = np.stack([wv[w] for w in chosen])
    fig = Figure(figsize=(12, 5.5))
    FigureCanvasAgg(fig)
    for ax, name, coords in zip(
        fig.subplots(1, 2),
        ("PCA", "t-SNE"),
        (pca_2d(vectors), tsne_2d(vectors)),
        strict=True,
    ):
        ax.scatter(coords[:, 0], coords[:, 1], s=18, color="tab:blue")
        for word, (x, y) in zip(chosen, coords, strict=True):
            ax.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
        ax.set_title(f"{name} of {len(chosen)} word vectors")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqlab.analysis.embedding_map import pca_2d, plot_embedding_map, select_words, tsne_2d
from seqlab.embeddings.vectors_io import WordVectors
from seqlab.errors import DataError


def pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def test_pca_keeps_distances_of_points_on_a_plane() -> None:
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(10, 2)) @ rng.normal(size=(2, 6)) + 3.0  # (10, 6), rank 2
    assert np.allclose(pairwise(pca_2d(plane)), pairwise(plane), atol=1e-8)


def test_tsne_separates_clusters_deterministically() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=10, size=(3, 8))
    points = np.concatenate([c + rng.normal(size=(6, 8)) for c in centres])  # (18, 8)
    labels = np.repeat(np.arange(3), 6)
    coords = tsne_2d(points, seed=0)
    dist = pairwise(coords)
    np.fill_diagonal(dist, np.inf)
    assert (labels[dist.argmin(axis=1)] == labels).all()
    assert np.array_equal(coords, tsne_2d(points, seed=0))
    with pytest.raises(ValueError, match="at least 3"):
        tsne_2d(points[:2])


def test_plot_writes_a_png_with_the_chosen_words(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    words = ["king", "queen", "man", "woman", "the", "of"]
    wv = WordVectors(words, rng.normal(size=(6, 5)).astype(np.float32))
    out = plot_embedding_map(wv, tmp_path / "map.png", ["king", "queen", "man", "woman"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert select_words(wv, None) == ["king", "queen", "man", "woman"]
    with pytest.raises(DataError, match="not in the vocabulary of 6 words: duke"):
        plot_embedding_map(wv, tmp_path / "x.png", ["king", "duke", "man"])

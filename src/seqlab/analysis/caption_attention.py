"""Where a captioner looked for each word (`seqlab plot RUN_DIR --kind attention`; after
Xu et al., 2015, figure 2): the image, then one panel per generated word with that
step's attention over the feature map, upsampled to the image and laid over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_caption_attention(
    image: np.ndarray,
    weights: np.ndarray,
    grid: tuple[int, int],
    words: Sequence[str],
    out: Path,
    *,
    title: str = "",
) -> Path:
    """Draw ``image`` (H, W) and, per word, ``weights`` (S words, K = h·w locations, row by
    row) as a PNG at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=np.float64)
    rows, cols = grid
    if weights.shape != (len(words), rows * cols):
        raise ValueError(f"weights must be ({len(words)}, {rows * cols}), got {weights.shape}")
    height, width = image.shape
    panels = len(words) + 1
    per_row = 4
    lines = -(-panels // per_row)
    fig, axes = plt.subplots(
        lines, per_row, figsize=(per_row * 2.6, lines * 2.6 * height / width + 0.6), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image, cmap="gray_r")
    axes.flat[0].set_title(title or "scene", fontsize=8)
    for i, word in enumerate(words, 1):
        ax = axes.flat[i]
        ax.imshow(image, cmap="gray_r")
        alpha = weights[i - 1].reshape(rows, cols)
        ax.imshow(alpha, cmap="jet", alpha=0.5, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        ax.set_title(word, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

"""Attention of a speech recogniser over time: which frames each output character read
(`seqlab plot RUN_DIR --kind attention --wav FILE`; ``seqlab.plots`` runs the model and
passes arrays).

Top: the log-mel features (bins x frames). Bottom: the attention weights of each output
step (rows: the characters, then </s>) over the listener's steps, each covering
``reduction`` frames, on the same time axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_alignment(
    features: np.ndarray,
    weights: np.ndarray,
    labels: Sequence[str],
    out: Path,
    *,
    seconds_per_frame: float,
    reduction: int,
    title: str = "",
) -> Path:
    """Draw ``features`` (T, F) above ``weights`` (S steps, K listener steps) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = np.asarray(features, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != len(labels):
        raise ValueError(f"weights must be ({len(labels)} steps, K), got {weights.shape}")
    frames, steps = features.shape[0], weights.shape[1]
    end = frames * seconds_per_frame
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        sharex=True,
        figsize=(max(6.0, 2.0 * end + 2.0), 2.2 + 0.3 * len(labels)),
        gridspec_kw={"height_ratios": [1.0, max(1.0, 0.25 * len(labels))]},
    )
    top.imshow(features.T, origin="lower", aspect="auto", cmap="magma", extent=(0, end, 0, 1))
    top.set_yticks([])
    top.set_ylabel("log-mel")
    width = steps * reduction * seconds_per_frame
    bottom.imshow(
        weights, aspect="auto", cmap="Blues", vmin=0.0, extent=(0, width, len(labels) - 0.5, -0.5)
    )
    bottom.set_yticks(range(len(labels)), list(labels))
    bottom.set_xlabel("seconds")
    bottom.set_xlim(0, end)
    if title:
        top.set_title(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

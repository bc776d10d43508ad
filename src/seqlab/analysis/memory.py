"""Attention of a memory network over the sentences of a story, hop by hop
(`seqlab plot RUN_DIR --kind memory`; ``seqlab.plots`` runs the model and passes arrays).

One row per memory sentence (oldest first), one column per hop; labelled supporting facts
are marked with ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_memory(
    sentences: Sequence[str],
    attention: np.ndarray,
    out: Path,
    *,
    question: str,
    answer: str,
    gold: str = "",
    supporting: Sequence[int] = (),
) -> Path:
    """Draw ``attention`` (K hops, n sentences) over ``sentences`` as a PNG at ``out``;
    ``supporting`` are the positions of the labelled supporting facts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray(attention, dtype=np.float64)  # (K, n)
    if weights.ndim != 2 or weights.shape[1] != len(sentences):
        raise ValueError(
            f"attention must be (hops, {len(sentences)} sentences), got {weights.shape}"
        )
    hops, count = weights.shape
    labels = [("* " if i in set(supporting) else "") + s for i, s in enumerate(sentences)]
    fig, ax = plt.subplots(
        figsize=(3.0 + 1.0 * hops + 0.09 * max(map(len, labels)), 1.2 + 0.3 * count)
    )
    image = ax.imshow(weights.T, cmap="Blues", vmin=0.0, aspect="auto")
    ax.set_xticks(range(hops), [f"hop {k + 1}" for k in range(hops)])
    ax.set_yticks(range(count), labels, fontsize=8)
    for k in range(hops):
        for i in range(count):
            color = "white" if weights[k, i] > 0.6 * weights.max() else "black"
            ax.text(k, i, f"{weights[k, i]:.2f}", ha="center", va="center", fontsize=7, color=color)
    verdict = f" (gold: {gold})" if gold and gold != answer else ""
    ax.set_title(f"{question} -> {answer}{verdict}", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

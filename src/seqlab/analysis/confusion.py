"""The tag confusion matrix of a tagger (`seqlab plot RUN_DIR --kind confusion`).

Rows are gold tags, columns predicted tags, each row normalised to sum to 1 (counts in
the cells). The counts come from the tagging task's final evaluation (``seqlab.plots``
reads them from the run dir).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_confusion(labels: list[str], counts: np.ndarray, out: Path, split: str) -> Path:
    """Draw the row-normalised confusion matrix ``counts`` (K, K: gold x predicted, in the
    order of ``labels``) of ``split`` as a PNG at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(counts, dtype=np.float64)  # (K, K) gold x predicted
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    size = max(4.0, 0.45 * len(labels))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"confusion ({split}, row-normalised)")
    if len(labels) <= 25:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j]:
                    color = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        str(int(counts[i, j])),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color=color,
                    )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

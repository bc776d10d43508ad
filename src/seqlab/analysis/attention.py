"""Source x target attention of an encoder-decoder (`seqlab plot RUN_DIR --kind attention`;
``seqlab.plots`` runs the model and passes arrays).

One row per output token (EOS last when the output ended with it), one column per source
token; a multi-head model gives one panel per head.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_attention(
    weights: np.ndarray,
    source: Sequence[str],
    target: Sequence[str],
    out: Path,
    *,
    title: str = "",
) -> Path:
    """Draw ``weights`` (T target, S source) or (H heads, T, S) as heatmaps at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = np.asarray(weights, dtype=np.float64)
    if heads.ndim == 2:
        heads = heads[None]
    if heads.ndim != 3 or heads.shape[1:] != (len(target), len(source)):
        raise ValueError(
            f"attention must be ({len(target)} target, {len(source)} source) tokens, "
            f"optionally per head, got {np.asarray(weights).shape}"
        )
    count = heads.shape[0]
    width = 1.5 + 0.38 * len(source)
    height = 1.2 + 0.3 * len(target)
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    for head, ax in enumerate(axes[0]):
        ax.imshow(heads[head], cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(target)), target, fontsize=8)
        ax.set_xlabel("source")
        if count > 1:
            ax.set_title(f"head {head + 1}", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

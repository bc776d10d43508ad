"""A sequence autoencoder's reconstruction quality against sentence length."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_reconstruction(
    labels: Sequence[str],
    exact: Sequence[float],
    token_acc: Sequence[float],
    counts: Sequence[int],
    out: Path,
    title: str,
) -> Path:
    """Exact-match rate and token accuracy (percent) per length bin ``labels`` (e.g.
    ``"1-5"``), with the number of sentences in each bin under its label."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    xs = range(len(labels))
    ax.plot(xs, token_acc, marker="o", label="token accuracy")
    ax.plot(xs, exact, marker="s", label="exact reconstruction")
    ax.set_xticks(list(xs), [f"{lab}\n(n={n})" for lab, n in zip(labels, counts, strict=True)])
    ax.set_xlabel("sentence length (words)")
    ax.set_ylabel("percent")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

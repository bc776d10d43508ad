"""Validation and learning curves: a metric against one hyper-parameter or the size of
the training set, mean ± std over the runs at each value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Series = tuple[Sequence[float], Sequence[float]]
"""(mean, std) at each x value."""


def plot_param_curves(
    xs: Sequence[float],
    metric: str,
    selected: Series,
    losses: Mapping[str, Series],
    out: Path,
    *,
    xlabel: str,
    title: str,
    log_x: bool = False,
) -> Path:
    """Left: the selection metric (``metric``, dev) against ``xs``; right: the train and
    dev losses at the chosen checkpoint. Error bars: the std over runs at that value."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    ax.errorbar(xs, selected[0], yerr=selected[1], marker="o", capsize=3, color="tab:green")
    ax.set_ylabel(f"{metric} (dev)")
    for name, (mean, std) in losses.items():
        axes[1].errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=name)
    axes[1].set_ylabel("loss at the chosen checkpoint")
    axes[1].legend()
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if log_x:
            ax.set_xscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

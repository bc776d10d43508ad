"""Dev curves of several recipes over seeds: at each evaluated step, the mean over a
recipe's seeds, a band of ± one sample std, and every seed as a thin line."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Curve = Mapping[int, float]
"""step -> the metric at that evaluation, for one run."""


def mean_std_at_steps(runs: Sequence[Curve]) -> tuple[list[int], list[float], list[float]]:
    """The steps every run evaluated, and the mean and sample std (0 for one run) there."""
    steps = sorted(set.intersection(*(set(run) for run in runs))) if runs else []
    values = [[run[s] for run in runs] for s in steps]
    mean = [statistics.fmean(v) for v in values]
    std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
    return steps, mean, std


def plot_seed_curves(
    recipes: Mapping[str, Mapping[str, Sequence[Curve]]],
    metrics: Sequence[str],
    out: Path,
    *,
    title: str,
) -> Path:
    """One panel per metric, one colour per recipe: ``recipes[name][metric]`` is the list
    of that recipe's runs (one curve per seed)."""
    legend_h = 0.25 * len(recipes) + 0.2  # inches under the panels, one line a recipe
    height = 3.6 + legend_h
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.6 * len(metrics), height), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (name, by_metric) in enumerate(recipes.items()):
            runs = by_metric.get(metric, [])
            if not runs:
                continue
            color = f"C{i % 10}"
            steps, mean, std = mean_std_at_steps(runs)
            for run in runs:
                ax.plot(sorted(run), [run[s] for s in sorted(run)], color=color, lw=0.6, alpha=0.4)
            ax.plot(steps, mean, color=color, marker="o", ms=3, label=f"{name} (n={len(runs)})")
            low = [m - s for m, s in zip(mean, std, strict=True)]
            high = [m + s for m, s in zip(mean, std, strict=True)]
            ax.fill_between(steps, low, high, color=color, alpha=0.15)
        ax.set_xlabel("optimizer step")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, legend_h / height, 1, 1))
    fig.legend(handles, labels, loc="lower center", fontsize=8, frameon=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

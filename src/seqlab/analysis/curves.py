"""Learning curves: training loss and validation metrics, one point per evaluation."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(rows: list[dict[str, float]], out: Path, title: str) -> Path:
    """Loss panel (train and validation) and one panel per other validation metric;
    ``rows``: one dict per evaluation (a run's metrics.jsonl)."""
    steps = [r["step"] for r in rows]
    val_keys = [k for k in rows[0] if k.startswith("val_") and k != "val_loss"]
    panels = 1 + len(val_keys)
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.5), squeeze=False)
    ax = axes[0][0]
    ax.plot(steps, [r["train_loss"] for r in rows], marker="o", label="train")
    if "val_loss" in rows[0]:
        ax.plot(steps, [r["val_loss"] for r in rows], marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    for ax, key in zip(axes[0][1:], val_keys, strict=True):
        ax.plot(steps, [r[key] for r in rows], marker="o", color="tab:green")
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

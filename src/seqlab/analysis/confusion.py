"""`seqlab plot RUN_DIR --kind confusion`: the tag confusion matrix of a tagging run.

Reads ``RUN_DIR/tags_test.json`` (or ``tags_val.json``), written by the tagging task's
evaluation; rows are gold tags, columns predicted tags, each row normalised to sum to 1
(counts in the cells).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seqlab.errors import RunDirError


def plot_confusion(run_dir: Path, out: Path) -> Path:
    """Draw the row-normalised confusion matrix as a PNG at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = next(
        (
            run_dir / f"tags_{s}.json"
            for s in ("test", "val")
            if (run_dir / f"tags_{s}.json").is_file()
        ),
        None,
    )
    if source is None:
        raise RunDirError(f"{run_dir}: no tags_test.json or tags_val.json; evaluate a tagging run")
    side = json.loads(source.read_text(encoding="utf-8"))
    labels: list[str] = side["labels"]
    counts = np.asarray(side["confusion"], dtype=np.float64)  # (K, K) gold x predicted
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    size = max(4.0, 0.45 * len(labels))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"confusion ({source.stem.removeprefix('tags_')}, row-normalised)")
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

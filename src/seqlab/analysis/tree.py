"""A sentiment tree drawn with each node's predicted class (`seqlab plot --kind tree`).

Drawn from plain arrays: per node its children (or None for a leaf), its word (leaves),
its predicted class; ``seqlab.plots`` gets them from a run's prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def tree_layout(
    children: Sequence[tuple[int, int] | None], root: int
) -> dict[int, tuple[float, float]]:
    """(x, y) of every node under ``root``: leaves at x = 0, 1, ... left to right, y = 0;
    a parent above its highest child, centred over its children."""
    position: dict[int, tuple[float, float]] = {}
    next_leaf = 0
    stack: list[tuple[int, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        pair = children[node]
        if pair is None:
            position[node] = (float(next_leaf), 0.0)
            next_leaf += 1
        elif not expanded:
            stack.append((node, True))
            stack.extend([(pair[1], False), (pair[0], False)])
        else:
            (x1, y1), (x2, y2) = position[pair[0]], position[pair[1]]
            position[node] = ((x1 + x2) / 2, max(y1, y2) + 1.0)
    return position


def plot_tree(
    children: Sequence[tuple[int, int] | None],
    words: Sequence[str | None],
    labels: Sequence[int],
    label_names: Sequence[str],
    out: Path,
    root: int = 0,
    title: str = "",
) -> Path:
    """Draw the tree under ``root`` with each node coloured by its class (``labels``,
    indices into ``label_names``: negative red, neutral grey, positive blue) and the leaves'
    words below. PNG or SVG by ``out``'s suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    position = tree_layout(children, root)
    classes = len(label_names)
    cmap = plt.get_cmap("RdBu")
    colour = {k: cmap(0.1 + 0.8 * k / max(classes - 1, 1)) for k in range(classes)}
    n_leaves = sum(1 for node in position if children[node] is None)
    height = max(y for _, y in position.values())
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * n_leaves + 1), max(3.0, 0.45 * height + 2)))
    for node, (x, y) in position.items():
        pair = children[node]
        if pair is not None:
            for child in pair:
                cx, cy = position[child]
                ax.plot([x, cx], [y, cy], color="0.6", linewidth=1, zorder=1)
    for node, (x, y) in position.items():
        ax.scatter([x], [y], s=160, color=colour[labels[node]], edgecolors="black", zorder=2)
        ax.text(x, y, str(labels[node]), ha="center", va="center", fontsize=7, zorder=3)
        word = words[node]
        if word is not None:
            ax.text(x, y - 0.45, word, ha="right", va="top", rotation=45, fontsize=9)
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=colour[k],
            markeredgecolor="black",
            label=f"{k} {name}",
        )
        for k, name in enumerate(label_names)
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8, frameon=False)
    ax.set_xlim(-1, n_leaves + 1)
    ax.set_ylim(-2.5, height + 1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

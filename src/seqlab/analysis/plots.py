"""`seqlab plot RUN_DIR --kind K`: the registry of figure kinds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seqlab.analysis.curves import plot_curves
from seqlab.registry import Registry

PlotFn = Callable[[Path, Path], Path]

PLOTS: Registry[PlotFn] = Registry("plot kind")
PLOTS.register("curves", plot_curves)


def make_plot(run_dir: Path, kind: str, out: Path | None = None) -> Path:
    plot = PLOTS.get(kind)
    return plot(run_dir, out if out is not None else run_dir / f"{kind}.png")

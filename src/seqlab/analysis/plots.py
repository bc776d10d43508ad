"""`seqlab plot RUN_DIR --kind K`: the registry of figure kinds.

Every kind is ``plot(run_dir, out, **options) -> Path`` (the PNG written); options a kind
does not know are an error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqlab.analysis.confusion import plot_confusion
from seqlab.analysis.curves import plot_curves
from seqlab.analysis.run_gradient_flow import plot_run_gradient_flow
from seqlab.errors import ConfigError
from seqlab.registry import Registry
from seqlab.tasks.word2vec import plot_embeddings

PlotFn = Callable[..., Path]

PLOTS: Registry[PlotFn] = Registry("plot kind")
PLOTS.register("curves", plot_curves)
PLOTS.register("embeddings", plot_embeddings)
PLOTS.register("gradient-flow", plot_run_gradient_flow)
PLOTS.register("confusion", plot_confusion)


def make_plot(run_dir: Path, kind: str, out: Path | None = None, **options: Any) -> Path:
    plot = PLOTS.get(kind)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(plot).parameters
    for key in given:
        if key not in accepted:
            raise ConfigError(f"plot kind {kind!r} does not take --{key.replace('_', '-')}")
    return plot(run_dir, out if out is not None else run_dir / f"{kind}.png", **given)

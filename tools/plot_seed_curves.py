"""Dev curves of several recipes over seeds: mean ± std of a run's evaluations at each step.

    python tools/plot_seed_curves.py RUN_DIR... --out docs/img/NAME.png [--metric val_loss]

Run dirs are grouped into recipes by their name without the ``-sN`` seed suffix
(``none-s1``, ``none-s2`` -> ``none``). Each panel is one metric of ``metrics.jsonl``
(default: ``val_loss`` and ``val_bleu_greedy``), one line per recipe (the mean over its
seeds at the steps every seed reached), a band of ± one sample std, the seeds as thin
lines. The table of the same numbers is printed in Markdown. Used for the curriculum study
of docs/results/methodology.md (the ``seqlab plot`` kinds draw one run, or a search).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SEED = re.compile(r"-s\d+$")


def read_log(run: Path) -> dict[int, dict[str, float]]:
    """step -> the evaluation's metrics, from ``RUN/metrics.jsonl``."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {int(r["step"]): r for r in rows if line_has_eval(r)}


def line_has_eval(record: dict[str, float]) -> bool:
    return any(key.startswith("val_") for key in record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metric", action="append", default=None)
    args = parser.parse_args()
    metrics = args.metric or ["val_loss", "val_bleu_greedy"]
    recipes: dict[str, list[dict[int, dict[str, float]]]] = defaultdict(list)
    for run in args.runs:
        recipes[SEED.sub("", run.name)].append(read_log(run))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    axes = [axes] if len(metrics) == 1 else list(axes)
    print("| recipe | seeds | metric | " + " | ".join(["step: mean ± std"]) + " |")
    print("|---|---|---|---|")
    for (name, logs), color in zip(recipes.items(), ["C0", "C1", "C2", "C3"], strict=False):
        steps = sorted(set.intersection(*(set(log) for log in logs)))
        for ax, metric in zip(axes, metrics, strict=True):
            values = [[log[s][metric] for log in logs] for s in steps]
            mean = [statistics.fmean(v) for v in values]
            std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            for log in logs:
                ax.plot(steps, [log[s][metric] for s in steps], color=color, lw=0.6, alpha=0.4)
            ax.plot(steps, mean, color=color, marker="o", label=f"{name} (n={len(logs)})")
            ax.fill_between(
                steps, [m - s for m, s in zip(mean, std, strict=True)],
                [m + s for m, s in zip(mean, std, strict=True)], color=color, alpha=0.15,
            )  # fmt: skip
            ax.set_xlabel("optimizer step")
            ax.set_title(metric)
            cells = ", ".join(
                f"{s}: {m:.3f} ± {d:.3f}" for s, m, d in zip(steps, mean, std, strict=True)
            )
            print(f"| {name} | {len(logs)} | {metric} | {cells} |")
    axes[0].legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

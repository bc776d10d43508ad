"""``seqlab train CONFIG --seeds 1-5``: one recipe over seeds, mean ± std of its metrics.

Each seed trains into ``OUT/seed_N`` (``trainer.seed=N``); the table is ``seqlab report``'s
over ``OUT``: the dev metrics (``val_*``) and the test metrics only where the recipe
computed them (``eval.test``), written to ``OUT/seeds.md`` and ``OUT/seeds.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from seqlab.errors import ConfigError
from seqlab.io import atomic_write_text
from seqlab.loader import load_config
from seqlab.provenance import Invocation
from seqlab.report import build_report, to_markdown
from seqlab.rundir import RunDir
from seqlab.runs import holds_run, train

SEED_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` -> [1, 2, 3, 4, 5]; ``"1,3,7"`` -> [1, 3, 7]; ``"1-3,9"`` mixes both."""
    seeds: list[int] = []
    for part in text.split(","):
        match = SEED_RANGE.fullmatch(part.strip())
        if match is None:
            raise ConfigError(f"--seeds {text!r}: expected seeds like 1-5 or 1,3,7")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ConfigError(f"--seeds {text!r}: range {part.strip()!r} runs backwards")
        seeds += range(first, last + 1)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: a seed is given twice")
    return seeds


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed_{seed}"


def reported_metrics(metrics: dict[str, Any]) -> list[str]:
    """The dev metrics of a run and the test metrics it computed (``val_acc`` first)."""
    dev = [k for k, v in metrics.items() if k.startswith("val_") and isinstance(v, int | float)]
    test = [f"test_{k[len('val_') :]}" for k in dev if f"test_{k[len('val_') :]}" in metrics]
    return dev + test


def train_seeds(
    config: Path,
    sets: list[str],
    seeds: list[int],
    out: Path,
    *,
    resume: bool = False,
    force: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train ``config`` (with ``sets``) once per seed into ``out/seed_N``; returns the
    report of ``out`` (its rows: mean ± sample std per recipe). With ``resume`` a finished
    seed is kept and an unfinished one continues from its checkpoint."""
    console = console or Console(stderr=True)
    if any(s.split("=", 1)[0].strip() == "trainer.seed" for s in sets):
        raise ConfigError("--seeds sets trainer.seed itself; leave out --set trainer.seed=...")
    if out.exists() and holds_run(out):
        raise ConfigError(f"{out}: is a run dir; --seeds needs a folder for its seed_N run dirs")
    last: dict[str, Any] = {}
    for index, seed in enumerate(seeds, 1):
        run_dir = seed_dir(out, seed)
        overrides = [*sets, f"trainer.seed={seed}"]
        console.print(f"[bold]seed {seed} ({index}/{len(seeds)}) -> {run_dir}[/bold]")
        if resume and RunDir(run_dir).metrics.is_file():
            last = json.loads(RunDir(run_dir).metrics.read_text(encoding="utf-8"))
            console.print(f"seed {seed}: finished already, kept")
            continue
        cfg = load_config(config, overrides)
        invocation = Invocation(list(sys.argv), str(config), overrides)
        last = train(
            cfg,
            run_dir,
            resume=resume and holds_run(run_dir),
            force=force,
            console=console,
            invocation=invocation,
        )
    report = build_report([out], reported_metrics(last) or None)
    atomic_write_text(out / "seeds.md", to_markdown(report))
    atomic_write_text(out / "seeds.json", json.dumps(report, indent=2, default=float) + "\n")
    return report

"""`make demo` / `seqlab demo`: a character LSTM language model on tiny Shakespeare.

Uses the configs shipped in the package (``seqlab/resources/demo*.yaml``) and the tiny
Shakespeare text shipped with it, so it runs anywhere without downloads: it fits the
character 5-gram Kneser-Ney baseline (seconds), trains the LSTM for at most about four
minutes, compares their validation bits per character, and samples a passage.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from seqlab.config import ExperimentConfig, apply_overrides
from seqlab.evaluation import generate_stream
from seqlab.loader import from_dict
from seqlab.rundir import RunDir
from seqlab.runs import train


def packaged_config(name: str, overrides: list[str] | None = None) -> ExperimentConfig:
    text = resources.files("seqlab").joinpath(f"resources/{name}").read_text(encoding="utf-8")
    return from_dict(apply_overrides(yaml.safe_load(text), overrides or []))


def run_demo(out: Path, overrides: list[str], console: Console) -> dict[str, Any]:
    cfg = packaged_config("demo.yaml", overrides)
    baseline_dir = out.with_name(out.name + "_kn5")
    log = Console(stderr=True)
    console.print("[bold]seqlab demo[/bold]: character language models on tiny Shakespeare")
    console.print(f"1/2 character 5-gram Kneser-Ney baseline -> {baseline_dir}")
    baseline = train(packaged_config("demo_baseline.yaml"), baseline_dir, force=True, console=log)
    console.print(
        f"2/2 {cfg.model.num_layers}x{cfg.model.hidden_size} {cfg.model.cell.upper()} "
        f"(at most {cfg.trainer.max_minutes} minutes) -> {out}"
    )
    metrics = train(cfg, out, force=True, console=log)
    table = Table(title="validation (last 10% of tiny Shakespeare)")
    for column in ("model", "bits/char", "nats/char"):
        table.add_column(column, justify="right" if column != "model" else "left")
    table.add_row("uniform over the characters", f"{_uniform_bpc(out):.3f}", "")
    table.add_row("5-gram Kneser-Ney", f"{baseline['val_bpc']:.3f}", f"{baseline['val_loss']:.3f}")
    table.add_row(
        f"LSTM ({int(metrics['steps'])} steps)",
        f"{metrics['val_bpc']:.3f}",
        f"{metrics['val_loss']:.3f}",
    )
    console.print(table)
    console.rule("sample (temperature 0.8)")
    pieces = []
    for piece in generate_stream(out, prompt="ROMEO:", max_tokens=400, temperature=0.8, seed=0):
        pieces.append(piece)
        console.print(piece, end="", markup=False, highlight=False)
    console.print()
    console.rule()
    console.print("next:")
    for line in (
        f"seqlab generate {out} --prompt 'JULIET:' --max-tokens 300 --top-p 0.9",
        f"seqlab eval {out} --split val",
        f"seqlab plot {out} --kind curves",
        "seqlab train configs/shakespeare_char.yaml   # the full-size char LSTM",
    ):
        console.print(f"  {line}", markup=False, highlight=False)
    return dict(metrics) | {
        "baseline_val_bpc": baseline["val_bpc"],
        "sample": "".join(pieces),
        "run_dir": str(out),
    }


def _uniform_bpc(run_dir: Path) -> float:
    import math

    from seqlab.data.vocab import Vocab

    return math.log2(len(Vocab.load(RunDir(run_dir).vocab)))

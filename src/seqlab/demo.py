"""`make demo` / `seqlab demo`: a character language model on tiny Shakespeare.

Uses the config shipped in the package (``seqlab/resources/demo.yaml``) and the tiny
Shakespeare text shipped with it, so it runs on any machine without downloads.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from seqlab.config import apply_overrides, from_dict
from seqlab.evaluation import generate_text
from seqlab.runs import train


def demo_config_text() -> str:
    return resources.files("seqlab").joinpath("resources/demo.yaml").read_text(encoding="utf-8")


def run_demo(out: Path, overrides: list[str], console: Console) -> dict[str, Any]:
    raw = yaml.safe_load(demo_config_text())
    cfg = from_dict(apply_overrides(raw, overrides))
    console.print(
        f"[bold]seqlab demo[/bold]: {cfg.model.name} character language model on tiny "
        f"Shakespeare ({cfg.trainer.epochs} epoch(s), max {cfg.trainer.max_steps} steps) -> {out}"
    )
    metrics = train(cfg, out, force=True, console=Console(stderr=True))
    console.print(
        f"validation: [bold]{metrics['val_bpc']:.3f} bits/char[/bold] "
        f"({metrics['val_loss']:.3f} nats/char; a uniform guess over the "
        f"{_vocab_size(out)} characters would be {_uniform_bpc(out):.2f} bits/char)"
    )
    sample = generate_text(out, prompt="ROMEO:", max_tokens=300, temperature=0.8, seed=0)
    console.rule("sample (temperature 0.8)")
    console.print(sample, markup=False, highlight=False)
    console.rule()
    console.print("next:")
    console.print(f"  seqlab generate {out} --prompt 'JULIET:' --max-tokens 300", markup=False)
    console.print(f"  seqlab eval {out} --split val", markup=False)
    console.print(f"  seqlab plot {out} --kind curves", markup=False)
    return {k: v for k, v in metrics.items()} | {"sample": sample, "run_dir": str(out)}


def _vocab_size(run_dir: Path) -> int:
    from seqlab.data.vocab import Vocab

    return len(Vocab.load(run_dir / "vocab.json"))


def _uniform_bpc(run_dir: Path) -> float:
    import math

    return math.log2(_vocab_size(run_dir))

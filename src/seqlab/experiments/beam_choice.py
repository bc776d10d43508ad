"""Choose the beam width and length penalty of a translate run on its dev split.

``python -m seqlab.experiments.beam_choice RUN_DIR [--beams 1 3 5 10]
[--penalties 0 0.6 1.0] [--json]``

Loads the run once and decodes the ``val`` split with every (beam, alpha) pair (alpha the
GNMT length penalty; with beam 1 it changes nothing, so greedy is decoded once), scoring
sacreBLEU of the detokenised output. Prints one row per pair and the best pair (ties go to
the smaller beam, then the smaller alpha); writes them to ``RUN_DIR/beam_choice.json``. The
test split is not touched: decode it once with the chosen pair, ``seqlab eval RUN_DIR
--split test --set data.beam_size=K --set data.length_penalty=A``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from seqlab.evaluation import LoadedRun
from seqlab.io import atomic_write_text
from seqlab.tasks.mt_scores import translation_scores
from seqlab.tasks.translate import TranslateTask


def choose(
    run_dir: Path, beams: list[int], penalties: list[float], console: Console | None = None
) -> dict[str, Any]:
    run = LoadedRun.load(run_dir)
    if not isinstance(run.task, TranslateTask):
        raise SystemExit(f"{run_dir}: not a translate run ({run.cfg.task})")
    task: TranslateTask = run.task
    part = run.data.splits["val"]
    rows: list[dict[str, float]] = []
    pairs = [(b, a) for b in beams for a in (penalties if b > 1 else [0.0])]
    for beam, alpha in pairs:
        data_cfg = dataclasses.replace(run.cfg.data, beam_size=beam, length_penalty=alpha)
        cfg = dataclasses.replace(run.cfg, data=data_cfg)
        start = time.perf_counter()
        with torch.no_grad():
            hyps = task.translate_text(cfg, run.model, run.data, part.source)
        seconds = time.perf_counter() - start
        scores, _ = translation_scores(hyps, part.target_text, run.cfg.data.target_lang)
        row = {"beam": beam, "length_penalty": alpha, "val_bleu": scores["bleu"],
               "val_chrf": scores["chrf"], "seconds": seconds}  # fmt: skip
        rows.append(row)
        if console is not None:
            console.print(
                f"beam {beam:>2}  alpha {alpha:<4}  val BLEU {scores['bleu']:.2f}  "
                f"chrF {scores['chrf']:.2f}  ({seconds:.0f} s)",
                highlight=False,
            )
    best = max(rows, key=lambda r: (r["val_bleu"], -r["beam"], -r["length_penalty"]))
    result = {"run_dir": str(run_dir), "rows": rows, "chosen": best}
    atomic_write_text(run_dir / "beam_choice.json", json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--penalties", type=float, nargs="+", default=[0.0, 0.6, 1.0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = choose(args.run_dir, args.beams, args.penalties, Console(stderr=True))
    chosen = result["chosen"]
    Console(stderr=True).print(
        f"chosen on dev: beam {chosen['beam']}, length penalty {chosen['length_penalty']} "
        f"(val BLEU {chosen['val_bleu']:.2f})",
        highlight=False,
    )
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

"""Training speed of a translate config in target tokens per CPU-second, fp32 against bf16.

``python -m seqlab.experiments.mt_speed CONFIG [--set key=value ...] [--pairs 3000]
[--steps 10] [--json]``

Builds the config's data (the first ``--pairs`` training pairs; SentencePiece models
trained into a temporary dir) and model, then times ``--steps`` Adam steps (after 2 warm-up
steps) on the same length-bucketed batches, once per precision (autocast to bf16 around
forward and loss, as the Trainer does), each from the same initial weights. Process CPU
time is measured, not wall time, so other jobs on a shared machine change the result
little; one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from seqlab.contract import contract
from seqlab.loader import load_config
from seqlab.tasks.translate import TranslateTask


def measure(config: Path, sets: list[str], pairs: int, steps: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    cfg = load_config(config, [*sets, f"data.max_train_pairs={pairs}"])
    task = TranslateTask()
    with tempfile.TemporaryDirectory() as tmp:
        data = task.setup(cfg, Path(tmp), train=True)
    torch.manual_seed(cfg.trainer.seed)
    model = task.build_model(cfg, data)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    batches = list(task.train_batches(cfg, data, 0))[: steps + 2]
    result: dict[str, Any] = {"config": str(config), "pairs": pairs, "steps": steps}
    for precision in ("fp32", "bf16"):
        model.load_state_dict(initial)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
        tokens, seconds = 0, 0.0
        for index, batch in enumerate(batches):
            start = time.process_time()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = contract(model).loss(batch)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            if index >= 2:
                seconds += time.process_time() - start
                tokens += out.n
        result[f"{precision}_tokens_per_cpu_s"] = tokens / seconds
    result["bf16_speedup"] = result["bf16_tokens_per_cpu_s"] / result["fp32_tokens_per_cpu_s"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.config, args.sets, args.pairs, args.steps)
    for key, value in result.items():
        sys.stderr.write(f"{key}: {value}\n")
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

"""Issue 23's GPU numbers in one command: LM training tokens/s on the GPU against the CPU
(fp32 and bf16), fused against explicit cells, and ``seqlab bench recurrent`` on the GPU.

Each LM measurement is a real ``seqlab train`` of a shipped config (``ptb_small`` and
``ptb_medium``) for ``--steps`` steps in its own process (``trainer.max_steps``), with one
evaluation at the end; the number is the ``items_per_s`` of that evaluation's record in
``metrics.jsonl`` (target tokens per second of the training steps since the previous
record, as every run logs it). ``model.force_explicit=true`` gives the explicit per-step
cell on the same weights' shapes. The CPU rows use fewer steps (``--cpu-steps``). Prints
and writes one JSON object with the provenance fields the benches store.

    PYTHONPATH=src python benchmarks/gpu_numbers.py --out gpu_numbers.json
    PYTHONPATH=src python benchmarks/gpu_numbers.py --devices cpu --steps 20 --cpu-steps 20

On a machine without CUDA, ``--devices cpu`` measures the CPU rows only (``cuda`` rows are
refused with one line rather than silently skipped).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from seqlab.bench.metadata import bench_metadata


def lm_rate(
    config: str, device: str, precision: str, steps: int, explicit: bool, threads: int | None
) -> dict[str, Any]:
    """Train ``config`` for ``steps`` steps; its logged training tokens/s."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        sets = {
            "trainer.device": device,
            "trainer.precision": precision,
            "trainer.max_steps": steps,
            "trainer.eval_every": steps,
            "trainer.progress": "false",
            "trainer.checkpoint_every": 0,
            "model.force_explicit": str(explicit).lower(),
        }
        if threads is not None:
            sets["trainer.threads"] = threads
        command = [sys.executable, "-m", "seqlab", "train", config, "--out", str(run)]
        for key, value in sets.items():
            command += ["--set", f"{key}={value}"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"], "wall_s": wall}
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rate = float(records[-1]["items_per_s"])
    return {"tokens_per_s": round(rate, 1), "steps": steps, "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated: cpu, cuda")
    parser.add_argument("--configs", default="ptb_small,ptb_medium")
    parser.add_argument("--steps", type=int, default=400, help="steps per GPU measurement")
    parser.add_argument("--cpu-steps", type=int, default=40, help="steps per CPU measurement")
    parser.add_argument("--cpu-threads", type=int, default=None)
    parser.add_argument("--no-recurrent", action="store_true", help="skip bench recurrent")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if "cuda" in devices and not torch.cuda.is_available():
        sys.exit("gpu_numbers: no CUDA device here; use --devices cpu for the CPU rows only")
    result: dict[str, Any] = {**bench_metadata("cuda" if "cuda" in devices else "cpu")}
    if torch.cuda.is_available():
        result["gpu"] = torch.cuda.get_device_name(0)
    rows = []
    for config in [c.strip() for c in args.configs.split(",") if c.strip()]:
        for device in devices:
            steps = args.steps if device == "cuda" else args.cpu_steps
            threads = args.cpu_threads if device == "cpu" else None
            for precision in ("fp32", "bf16"):
                for explicit in (False, True):
                    row = {
                        "config": config,
                        "device": device,
                        "precision": precision,
                        "cell": "explicit" if explicit else "fused",
                        **lm_rate(config, device, precision, steps, explicit, threads),
                    }
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
    result["lm"] = rows
    by_key = {(r["config"], r["device"], r["precision"], r["cell"]): r for r in rows}
    ratios: dict[str, float] = {}
    for config in {r["config"] for r in rows}:
        for precision in ("fp32", "bf16"):
            gpu = by_key.get((config, "cuda", precision, "fused"), {}).get("tokens_per_s")
            cpu = by_key.get((config, "cpu", precision, "fused"), {}).get("tokens_per_s")
            if gpu and cpu:
                ratios[f"{config}_{precision}_gpu_over_cpu"] = round(gpu / cpu, 2)
            for device in devices:
                fused = by_key.get((config, device, precision, "fused"), {}).get("tokens_per_s")
                explicit = by_key.get((config, device, precision, "explicit"), {})
                if fused and explicit.get("tokens_per_s"):
                    ratios[f"{config}_{device}_{precision}_explicit_time_ratio"] = round(
                        fused / explicit["tokens_per_s"], 2
                    )
    result["ratios"] = ratios
    if "cuda" in devices and not args.no_recurrent:
        from seqlab.bench import recurrent

        result["recurrent_cuda"] = recurrent.run(False, "cuda", None)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

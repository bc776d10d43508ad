"""Speed of the recurrent layers against ``torch.nn.LSTM``, in one process, on one input.

Configuration (a word-level language model's): 2 layers x 200 hidden units, input 200,
T = 35, B = 20; one iteration is forward + backward (input gradient included). Contenders:

* ``torch_lstm``: ``torch.nn.LSTM`` (oneDNN on CPU, cuDNN on GPU) -- the reference;
* ``seqlab_fused``: ``Recurrent("lstm")`` on its fused path, same weights;
* ``explicit_lstm``: ``Recurrent("lstm", force_explicit=True)``, the explicit kernels;
* ``peephole_lstm``, ``gru``, ``rnn``: ``Recurrent("peephole_lstm" | "gru" | "rnn_tanh")``
  on the explicit path.

Rounds interleave the contenders; each ratio is the median over rounds of the contender's
time over ``torch_lstm``'s in the same round, so load from other processes mostly cancels.
On the CPU everything is measured twice: at torch's default thread count (``*_ratio``,
``table``) and at one thread (``*_ratio_1t``, ``table_1t``).
``python -m seqlab.bench.recurrent [--json] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from seqlab.bench.metadata import bench_metadata
from seqlab.nn.recurrent import Recurrent

CONFIG = {"num_layers": 2, "hidden_size": 200, "input_size": 200, "steps": 35, "batch": 20}


def _contenders(device: torch.device) -> dict[str, nn.Module]:
    layers, hidden, inputs = CONFIG["num_layers"], CONFIG["hidden_size"], CONFIG["input_size"]
    torch.manual_seed(0)
    reference = nn.LSTM(inputs, hidden, layers, batch_first=True)
    fused = Recurrent("lstm", inputs, hidden, layers)
    explicit = Recurrent("lstm", inputs, hidden, layers, force_explicit=True)
    peephole = Recurrent("peephole_lstm", inputs, hidden, layers)
    for model in (fused, explicit, peephole):
        model.load_state_dict(reference.state_dict(), strict=model is not peephole)
    modules: dict[str, nn.Module] = {
        "torch_lstm": reference,
        "seqlab_fused": fused,
        "explicit_lstm": explicit,
        "peephole_lstm": peephole,
        "gru": Recurrent("gru", inputs, hidden, layers, force_explicit=True),
        "rnn": Recurrent("rnn_tanh", inputs, hidden, layers, force_explicit=True),
    }
    return {name: module.to(device) for name, module in modules.items()}


def _step(model: nn.Module, x: Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        output, _ = model(x)
        output.sum().backward()

    return step


def _measure(quick: bool, dev: torch.device) -> dict[str, list[float]]:
    """Seconds per iteration of every contender, one sample per round (rounds interleave
    the contenders)."""
    rounds, repeats, warmup = (2, 1, 1) if quick else (15, 5, 3)
    models = _contenders(dev)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(CONFIG["batch"], CONFIG["steps"], CONFIG["input_size"], generator=generator)
    x = x.to(dev).requires_grad_()
    steps = {name: _step(model, x) for name, model in models.items()}

    def timed(step: Callable[[], None]) -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - start) / repeats

    for step in steps.values():  # warm-up: allocator, oneDNN primitive caches
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(timed(step))
    return times


def run(
    quick: bool = False, device: str | None = None, threads: int | None = None
) -> dict[str, object]:
    """Time every contender at torch's default thread count (or ``threads``) and, on the
    CPU, at 1 thread; return tokens/s, ratios to ``torch.nn.LSTM`` (``*_ratio`` at the
    default, ``*_ratio_1t`` at one thread) and a table for each."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    default = threads if threads is not None else torch.get_num_threads()
    counts = [default] + ([1] if dev.type == "cpu" and default != 1 else [])
    tokens = CONFIG["batch"] * CONFIG["steps"]
    result: dict[str, object] = {
        "config": dict(CONFIG),
        "rounds": 2 if quick else 15,
        "threads_measured": counts,
    }
    previous = torch.get_num_threads()
    try:
        for count in counts:
            torch.set_num_threads(count)
            times = _measure(quick, dev)
            suffix = "" if count == default else "_1t"
            table = []
            for name, samples in times.items():
                ratio = statistics.median(
                    t / ref for t, ref in zip(samples, times["torch_lstm"], strict=True)
                )
                seconds = statistics.median(samples)
                result[f"{name}_tokens_per_s{suffix}"] = round(tokens / seconds)
                if name != "torch_lstm":
                    result[f"{name}_ratio{suffix}"] = round(ratio, 3)
                table.append(
                    {
                        "threads": count,
                        "model": name,
                        "ms_per_iter": round(1000 * seconds, 2),
                        "tokens_per_s": round(tokens / seconds),
                        "ratio_to_torch_lstm": round(ratio, 3),
                    }
                )
            result[f"table{suffix}"] = table
    finally:
        torch.set_num_threads(previous)
    result.update(bench_metadata(str(dev)) | {"torch_threads": default})
    return result


def print_report(result: dict[str, object], as_json: bool) -> None:
    """Print ``result["table"]`` as aligned columns; with ``as_json``, then the whole result
    as one JSON line (the last line on stdout)."""
    rows = [*_rows(result.get("table")), *_rows(result.get("table_1t"))]
    if rows:
        columns = list(dict.fromkeys(column for row in rows for column in row))
        cells = [[str(row.get(column, "")) for column in columns] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        for row_cells in cells:
            print("  ".join(c.ljust(w) for c, w in zip(row_cells, widths, strict=True)))
    if as_json:
        print(json.dumps(result))


def _rows(table: object) -> list[dict[str, object]]:
    return [row for row in table if isinstance(row, dict)] if isinstance(table, list) else []


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    print_report(run(args.quick, args.device, args.threads), args.json)


if __name__ == "__main__":
    main()

"""Speed of our multi-head attention and Transformer encoder layer against torch.nn's, in one
process, on the same input and the same weights.

Configuration: B = 16 sequences of T = 128 positions, E = 256, 4 heads, feed-forward 1024,
dropout 0.1, training mode; the batch has padding (lengths from T/2 to T), given to ours as
``mask`` and to torch as ``key_padding_mask``. One iteration is forward + backward (input
gradient included). Pairs, each ours against torch.nn's:

* ``mha``: ``MultiHeadAttention`` (fused path) vs ``nn.MultiheadAttention(batch_first=True)``,
  self-attention with the padding mask;
* ``mha_explicit``: our explicit path (the equations, no fused kernel) vs the same;
* ``mha_causal``: causal self-attention without padding (the language model's case);
* ``transformer_layer``: ``TransformerEncoderLayer`` vs ``nn.TransformerEncoderLayer``
  (post-norm, ReLU).

Every round times both sides of every pair, alternating which goes first; a ratio is the
median over rounds of ours / theirs in the same round (target <= 1.1), so load from other
processes mostly cancels. ``seqlab bench attention [--quick] [--json]`` (``--quick``: two
rounds on a small configuration, a smoke test rather than a measurement).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from seqlab.bench.metadata import bench_metadata
from seqlab.nn.attention import MultiHeadAttention
from seqlab.nn.transformer import TransformerEncoderLayer, causal_mask

CONFIG = {"batch": 16, "steps": 128, "embed": 256, "heads": 4, "feedforward": 1024}
QUICK = {"batch": 4, "steps": 32, "embed": 64, "heads": 4, "feedforward": 128}
DROPOUT = 0.1

Step = Callable[[], None]


def _inputs(config: dict[str, int], device: torch.device) -> tuple[Tensor, Tensor]:
    """x (B, T, E) requiring grad, and the padding mask (B, T), True at real positions."""
    generator = torch.Generator().manual_seed(0)
    B, T, E = config["batch"], config["steps"], config["embed"]
    x = torch.randn(B, T, E, generator=generator)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=generator)
    lengths[0] = T
    mask = torch.arange(T)[None, :] < lengths[:, None]
    return x.to(device).requires_grad_(), mask.to(device)


def _pairs(config: dict[str, int], device: torch.device) -> dict[str, tuple[Step, Step]]:
    """name -> (our step, torch's step), both sides with the same weights."""
    E, H, F = config["embed"], config["heads"], config["feedforward"]
    torch.manual_seed(0)
    ours_mha = MultiHeadAttention(E, H, DROPOUT).to(device)
    explicit_mha = MultiHeadAttention(E, H, DROPOUT, fused=False).to(device)
    theirs_mha = nn.MultiheadAttention(E, H, DROPOUT, batch_first=True).to(device)
    ours_layer = TransformerEncoderLayer(E, H, F, DROPOUT).to(device)
    theirs_layer = nn.TransformerEncoderLayer(E, H, F, DROPOUT, batch_first=True).to(device)
    explicit_mha.load_state_dict(ours_mha.state_dict())
    theirs_mha.load_state_dict(ours_mha.state_dict())
    theirs_layer.load_state_dict(ours_layer.state_dict())
    for module in (ours_mha, explicit_mha, theirs_mha, ours_layer, theirs_layer):
        module.train()
    x, mask = _inputs(config, device)
    padding = ~mask  # torch.nn: True at padding
    future = ~causal_mask(config["steps"], device)  # torch.nn: True where not allowed

    def step(module: nn.Module, forward: Callable[[], Tensor]) -> Step:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            x.grad = None
            forward().sum().backward()

        return run

    return {
        "mha": (
            step(ours_mha, lambda: ours_mha(x, x, x, mask)[0]),
            step(theirs_mha, lambda: theirs_mha(x, x, x, key_padding_mask=padding)[0]),
        ),
        "mha_explicit": (
            step(explicit_mha, lambda: explicit_mha(x, x, x, mask)[0]),
            step(theirs_mha, lambda: theirs_mha(x, x, x, key_padding_mask=padding)[0]),
        ),
        "mha_causal": (
            step(ours_mha, lambda: ours_mha(x, x, x, causal=True)[0]),
            step(
                theirs_mha,
                lambda: theirs_mha(x, x, x, attn_mask=future, is_causal=True, need_weights=False)[
                    0
                ],
            ),
        ),
        "transformer_layer": (
            step(ours_layer, lambda: ours_layer(x, mask)),
            step(theirs_layer, lambda: theirs_layer(x, src_key_padding_mask=padding)),
        ),
    }


def run(quick: bool = False, device: str | None = None) -> dict[str, object]:
    """Time every pair; return the ratios (ours / torch.nn's time) and a table."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rounds, repeats, warmup = (2, 1, 1) if quick else (12, 3, 2)
    config = QUICK if quick else CONFIG
    pairs = _pairs(config, dev)

    def timed(step: Step) -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - start) / repeats

    for ours, theirs in pairs.values():  # warm-up: allocator, kernel caches
        for _ in range(warmup):
            ours()
            theirs()
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pairs}
    for index in range(rounds):
        for name, (ours, theirs) in pairs.items():
            if index % 2 == 0:
                ours_time, theirs_time = timed(ours), timed(theirs)
            else:
                theirs_time, ours_time = timed(theirs), timed(ours)
            times[name][0].append(ours_time)
            times[name][1].append(theirs_time)
    result: dict[str, object] = {
        **bench_metadata(str(dev)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": dict(config) | {"dropout": DROPOUT},
        "rounds": rounds,
        "repeats": repeats,
    }
    table = []
    for name, (ours_times, theirs_times) in times.items():
        ratio = statistics.median(o / t for o, t in zip(ours_times, theirs_times, strict=True))
        result[f"{name}_ratio"] = round(ratio, 3)
        table.append(
            {
                "pair": name,
                "ours_ms": round(1000 * statistics.median(ours_times), 2),
                "torch_ms": round(1000 * statistics.median(theirs_times), 2),
                "ratio": round(ratio, 3),
            }
        )
    result["table"] = table
    return result

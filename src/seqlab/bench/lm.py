"""`seqlab bench lm`: training tokens/s of ptb_small, seqlab vs the plain PyTorch recipe.

Both sides train the same network (embedding 200, 2x200 LSTM, linear decoder; batch 20,
BPTT 35, SGD lr 1, gradient norm clipped at 5) on the same PTB windows in the same
process, and each is timed over its **whole training loop** for ``steps`` steps: making
the batches, the steps, the logging and saving the weights at the end. seqlab's side is
``Trainer.fit`` on its own ``RNNLM`` with the task's batches (``trainer.log_every`` 50, a
checkpoint and the best weights written at the end, as every run does); the plain side is
pytorch/examples' word_language_model loop written out: ``batchify``, ``get_batch``
windows, ``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear``, a hand-written step,
``total_loss += loss.item()`` every step, a log line every 50 steps and ``torch.save`` of
the weights at the end. Rounds alternate who goes first; ``speed_ratio`` = median over
rounds of seqlab tokens/s / plain tokens/s (>= 1.0: no framework overhead).

A warm-up of ``WARMUP`` steps a side, untimed, lets the allocator's heap and oneDNN's
primitives settle first.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.bench.metadata import bench_metadata
from seqlab.config import ExperimentConfig
from seqlab.loader import load_config
from seqlab.models.rnn_lm import LMBatch
from seqlab.shipped import CONFIG_DIR
from seqlab.tasks.rnn_lm import RNNLMTask
from seqlab.train.trainer import Trainer, seed_everything

CONFIG = CONFIG_DIR / "ptb_small.yaml"
LOG_EVERY = 50
WARMUP = 20


class PlainLM(nn.Module):
    """pytorch/examples word_language_model, LSTM, untied, no dropout."""

    def __init__(self, vocab: int, size: int = 200, layers: int = 2) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, size)
        self.rnn = nn.LSTM(size, size, layers, batch_first=True)
        self.decoder = nn.Linear(size, vocab)

    def forward(self, inputs: Tensor, hidden: Any) -> tuple[Tensor, Any]:
        output, hidden = self.rnn(self.encoder(inputs), hidden)
        return self.decoder(output), hidden


def _plain_loop(
    model: PlainLM, opt: torch.optim.Optimizer, data: Tensor, bptt: int, steps: int, out: Path
) -> int:
    """pytorch/examples' ``train()`` over ``data`` (B, N) for ``steps`` windows, then the
    weights saved; returns the number of target tokens."""
    log = io.StringIO()
    hidden: Any = None
    total_loss, tokens = 0.0, 0
    start = time.perf_counter()
    for step, i in enumerate(range(0, data.size(1) - 1, bptt)):
        if step == steps:
            break
        length = min(bptt, data.size(1) - 1 - i)
        inputs, targets = data[:, i : i + length], data[:, i + 1 : i + 1 + length]
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden)
        logits, hidden = model(inputs, hidden)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        total_loss += loss.item()
        tokens += targets.numel()
        if step % LOG_EVERY == 0 and step > 0:
            elapsed = time.perf_counter() - start
            print(f"step {step} loss {total_loss / LOG_EVERY:.2f} {elapsed:.1f}s", file=log)
            total_loss = 0.0
    torch.save(model.state_dict(), out)
    return tokens


def _seqlab_loop(
    task: RNNLMTask, cfg: ExperimentConfig, data: Any, model: nn.Module, run_dir: Path
) -> int:
    """``Trainer.fit`` for ``cfg.trainer.max_steps`` steps into a fresh ``run_dir``;
    returns the number of target tokens."""
    trainer = Trainer(
        model,
        cfg,
        run_dir,
        evaluate=lambda m: {cfg.eval.metric: 0.0},  # timing the loop, not the evaluation
        console=Console(file=io.StringIO()),
    )
    tokens = 0

    def batches(epoch: int) -> Iterator[LMBatch]:
        nonlocal tokens
        for batch in task.train_batches(cfg, data, epoch):
            tokens += batch.targets.numel()
            yield batch

    trainer.fit(batches)
    # the Trainer reads one batch ahead (to know an epoch's last): made, not trained on
    return tokens - cfg.trainer.batch_size * cfg.data.bptt


def run(quick: bool = False, steps: int | None = None, rounds: int = 3) -> dict[str, Any]:
    steps = steps or (10 if quick else 60)
    cfg = load_config(CONFIG, ["trainer.progress=false"])
    trainer_cfg = dataclasses.replace(
        cfg.trainer,
        epochs=1,  # ptb_small has no variable BPTT: every batch is batch_size x bptt
        max_steps=steps,
        eval_every=0,
        checkpoint_every=0,
        log_every=LOG_EVERY,
    )
    cfg = cfg.replace(trainer=trainer_cfg)
    task = RNNLMTask()
    rates: dict[str, list[float]] = {"seqlab": [], "plain": []}
    with TemporaryDirectory() as tmp:
        data = task.setup(cfg, Path(tmp), train=True)
        batch_size, bptt = cfg.trainer.batch_size, cfg.data.bptt
        ids = data.splits["train"]
        plain_data = ids[: ids.numel() // batch_size * batch_size].view(batch_size, -1)
        seed_everything(1)
        seqlab_model = task.build_model(cfg, data)
        plain = PlainLM(len(data.vocab))
        plain_opt = torch.optim.SGD(plain.parameters(), lr=1.0)
        # warm-up: the allocator's heap, oneDNN primitives
        warm = min(steps, WARMUP)
        _seqlab_loop(task, cfg.replace(trainer=dataclasses.replace(trainer_cfg, max_steps=warm)),
                     data, seqlab_model, Path(tmp) / "warm")  # fmt: skip
        _plain_loop(plain, plain_opt, plain_data, bptt, warm, Path(tmp) / "warm.pt")
        for round_index in range(rounds):
            for side in ("seqlab", "plain") if round_index % 2 == 0 else ("plain", "seqlab"):
                start = time.perf_counter()
                if side == "seqlab":
                    run_dir = Path(tmp) / f"seqlab{round_index}"
                    tokens = _seqlab_loop(task, cfg, data, seqlab_model, run_dir)
                else:
                    out = Path(tmp) / f"plain{round_index}.pt"
                    tokens = _plain_loop(plain, plain_opt, plain_data, bptt, steps, out)
                rates[side].append(tokens / (time.perf_counter() - start))
    ratios = [a / b for a, b in zip(rates["seqlab"], rates["plain"], strict=True)]
    return {
        "seqlab_tokens_per_s": statistics.median(rates["seqlab"]),
        "plain_tokens_per_s": statistics.median(rates["plain"]),
        "speed_ratio": statistics.median(ratios),
        "steps": steps,
        "rounds": rounds,
        "timed": "whole training loop: batches, steps, logging, saving the weights",
        **bench_metadata(cfg.trainer.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = run(quick=args.quick)
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()

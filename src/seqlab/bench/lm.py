"""`seqlab bench lm`: training tokens/s of ptb_small, seqlab vs the plain PyTorch recipe.

Both sides train the same network (embedding 200, 2x200 LSTM, linear decoder; batch 20,
BPTT 35, SGD lr 1, gradient norm clipped at 5) on the same PTB windows in the same
process, alternating single steps so that machine noise hits both alike. seqlab's side
is its real training step (``Trainer``: the model contract, penalty hook, clipping,
schedule) on its own ``RNNLM``; the plain side is pytorch/examples' word_language_model
written out: ``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear`` and a hand-written step.
``speed_ratio`` = seqlab tokens/s / plain tokens/s (>= 1.0: no framework overhead).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.loader import load_config
from seqlab.models.rnn_lm import LMBatch
from seqlab.tasks.rnn_lm import RNNLMTask
from seqlab.train.trainer import Trainer, seed_everything

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "ptb_small.yaml"


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


def _plain_step(model: PlainLM, opt: torch.optim.Optimizer, batch: LMBatch, hidden: Any) -> Any:
    if batch.reset:
        hidden = None
    logits, hidden = model(batch.inputs, hidden)
    loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return tuple(h.detach() for h in hidden)


def run(quick: bool = False, steps: int | None = None, rounds: int = 3) -> dict[str, Any]:
    steps = steps or (10 if quick else 60)
    cfg = load_config(CONFIG, ["trainer.progress=false"])
    task = RNNLMTask()
    with TemporaryDirectory() as tmp:
        data = task.setup(cfg, Path(tmp), train=True)
        batches = [
            b for _, b in zip(range(steps + 5), task.train_batches(cfg, data, 0), strict=False)
        ]
        seed_everything(1)
        seqlab_model = task.build_model(cfg, data)
        trainer = Trainer(seqlab_model, cfg, Path(tmp), evaluate=lambda m: {})
        plain = PlainLM(len(data.vocab))
        plain_opt = torch.optim.SGD(plain.parameters(), lr=1.0)
        seqlab_time = plain_time = 0.0
        hidden: Any = None
        for batch in batches[:5]:  # warm up both
            trainer._train_step([batch])
            hidden = _plain_step(plain, plain_opt, batch, hidden)
        for round_index in range(rounds):
            for batch in batches[5:]:  # alternate step by step; who goes first alternates
                for side in (0, 1) if round_index % 2 == 0 else (1, 0):
                    start = time.perf_counter()
                    if side == 0:
                        trainer._train_step([batch])
                        seqlab_time += time.perf_counter() - start
                    else:
                        hidden = _plain_step(plain, plain_opt, batch, hidden)
                        plain_time += time.perf_counter() - start
    tokens = rounds * sum(b.targets.numel() for b in batches[5:])
    seqlab_rate, plain_rate = tokens / seqlab_time, tokens / plain_time
    return {
        "seqlab_tokens_per_s": seqlab_rate,
        "plain_tokens_per_s": plain_rate,
        "speed_ratio": seqlab_rate / plain_rate,
        "steps": steps * rounds,
        "threads": torch.get_num_threads(),
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

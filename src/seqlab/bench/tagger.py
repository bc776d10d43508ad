"""`seqlab bench tagger`: training sentences/s of the ewt_upos tagger, seqlab vs plain PyTorch.

Both sides train the same network (word embedding + char-BiLSTM features, 2-layer BiLSTM,
linear output, dropout, Adam, gradient norm clipped at 5) on the same EWT batches in the
same process, alternating blocks of steps (who goes first alternates by round) so that
machine noise hits both alike. seqlab's side is its real training step (``Trainer`` over
``Tagger``, ``Recurrent``); the plain side is the network written with ``nn.Embedding``,
``nn.LSTM`` (packed sequences) and ``nn.Linear`` and a hand-written step. Both use the same
optimizer: ``torch.optim.Adam`` with its fused kernel (what seqlab's ``build_optimizer``
picks for CPU/CUDA float parameters), same lr, betas and eps.

The trick seqlab has and the plain recipe lacks (a fair win, named): seqlab runs the
char-BiLSTM once per distinct spelling in the batch and gathers the result for every token
(``Tagger``'s word deduplication); the plain recipe runs it on every token, as the usual
tutorial code does. ``speed_ratio`` = seqlab / plain sentences/s (median over rounds).
``predict_sentences_per_s``: ``TaggingTask.tag_sentences`` on the dev set (batching and
decoding included).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.bench.metadata import bench_metadata
from seqlab.loader import load_config
from seqlab.models.tagger import TaggerBatch, TaggerConfig
from seqlab.shipped import CONFIG_DIR
from seqlab.tasks.tagging import TaggingTask
from seqlab.train.trainer import Trainer, seed_everything

CONFIG = CONFIG_DIR / "ewt_upos.yaml"


class PlainTagger(nn.Module):
    """The ewt_upos network in plain PyTorch."""

    def __init__(self, cfg: TaggerConfig, words: int, chars: int, tags: int) -> None:
        super().__init__()
        self.word_embedding = nn.Embedding(words, cfg.embedding_size, padding_idx=0)
        self.char_embedding = nn.Embedding(chars, cfg.char_embedding_size, padding_idx=0)
        self.char_lstm = nn.LSTM(
            cfg.char_embedding_size, cfg.char_hidden_size, batch_first=True, bidirectional=True
        )
        self.lstm = nn.LSTM(
            cfg.embedding_size + 2 * cfg.char_hidden_size,
            cfg.hidden_size,
            cfg.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(2 * cfg.hidden_size, tags)

    def forward(self, batch: TaggerBatch) -> Tensor:
        ids, lengths, mask = batch.words
        chars = batch.chars[mask]  # (N, C)
        packed = pack_padded_sequence(
            self.char_embedding(chars), batch.char_lengths[mask].cpu(), True, False
        )
        _, (h, _) = self.char_lstm(packed)  # h (2, N, Hc)
        grid = h.new_zeros(*ids.shape, 2 * h.shape[2])
        grid[mask] = torch.cat([h[0], h[1]], dim=1)
        inputs = self.dropout(torch.cat([self.word_embedding(ids), grid], dim=2))
        packed = pack_padded_sequence(inputs, lengths.cpu(), True, False)
        output, _ = pad_packed_sequence(self.lstm(packed)[0], True)
        return self.out(self.dropout(output))


def _plain_step(model: PlainTagger, opt: torch.optim.Optimizer, batch: TaggerBatch) -> None:
    logits = model(batch)
    loss = F.cross_entropy(logits.flatten(0, 1), batch.tags.flatten(), ignore_index=-1)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()


def run(quick: bool = False, steps: int | None = None, rounds: int = 3) -> dict[str, Any]:
    steps = steps or (5 if quick else 30)
    overrides = ["trainer.progress=false", "model.word_dropout=0.0", "model.word_dropout_alpha=0.0"]
    cfg = load_config(CONFIG, overrides)
    task = TaggingTask()
    with TemporaryDirectory() as tmp:
        data = task.setup(cfg, Path(tmp), train=True)
        batches = [
            b for _, b in zip(range(steps + 2), task.train_batches(cfg, data, 0), strict=False)
        ]
        sentences = sum(len(b.words.lengths) for b in batches[2:])
        seed_everything(1)
        model = task.build_model(cfg, data)
        trainer = Trainer(model, cfg, Path(tmp), evaluate=lambda m: {})
        plain = PlainTagger(cfg.model, len(data.vocab), len(data.chars), len(data.tags))
        optim = cfg.optim
        plain_opt = torch.optim.Adam(
            plain.parameters(), lr=optim.lr, betas=optim.betas, eps=optim.eps, fused=True
        )
        assert type(trainer.optimizer) is torch.optim.Adam  # the same optimizer on both sides
        assert trainer.optimizer.defaults.get("fused"), "seqlab's Adam is the fused kernel"
        for batch in batches[:2]:  # warm up both
            trainer._train_step([batch])
            _plain_step(plain, plain_opt, batch)
        seqlab_times: list[float] = []
        plain_times: list[float] = []
        for round_index in range(rounds):
            for side in ("seqlab", "plain") if round_index % 2 == 0 else ("plain", "seqlab"):
                start = time.perf_counter()
                for batch in batches[2:]:
                    if side == "seqlab":
                        trainer._train_step([batch])
                    else:
                        _plain_step(plain, plain_opt, batch)
                elapsed = time.perf_counter() - start
                (seqlab_times if side == "seqlab" else plain_times).append(elapsed)
        dev = [s.words for s in data.splits["val"]][: 200 if quick else None]
        start = time.perf_counter()
        task.tag_sentences(cfg, model, data, dev)
        predict_time = time.perf_counter() - start
    seqlab_rate = rounds * sentences / sum(seqlab_times)
    plain_rate = rounds * sentences / sum(plain_times)
    ratios = [p / s for s, p in zip(seqlab_times, plain_times, strict=True)]
    return {
        "seqlab_sentences_per_s": seqlab_rate,
        "plain_sentences_per_s": plain_rate,
        "speed_ratio": statistics.median(ratios),
        "predict_sentences_per_s": len(dev) / predict_time,
        "optimizer": "torch.optim.Adam(fused=True), both sides",
        "steps": steps,
        "rounds": rounds,
        **bench_metadata(cfg.trainer.device),
    }

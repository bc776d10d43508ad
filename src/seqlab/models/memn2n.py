"""End-to-end memory network for bAbI question answering (Sukhbaatar et al., 2015).

The network is :class:`seqlab.nn.memory.MemoryNetwork`; this module adds the batch type,
the config, the loss (mean cross-entropy of the answer word) and linear start's switch.

Linear start (LS, section 4.2): training begins with the softmax of every memory layer
removed; it is put back when the validation loss has stopped falling for
``linear_start_patience`` evaluations, or after ``linear_start_epochs`` evaluations
(one per epoch), whichever comes first. The reference code uses a fixed count (20 epochs
per task, 30 joint). The softmax comes back at the next training step, not during the
evaluation that decided it, so the weights saved after that evaluation are evaluated as
they were scored; the state lives in buffers, so checkpoints and resume keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.errors import ConfigError
from seqlab.nn.memory import MemoryNetwork


class BabiBatch(NamedTuple):
    story: Tensor  # (B, M, T) word ids of the memories, oldest first, 0 = padding
    question: Tensor  # (B, L) word ids
    answers: Tensor  # (B,) answer word ids
    supporting: Tensor  # (B, M) bool, True at the labelled supporting facts
    tasks: Tensor  # (B,) bAbI task number of each question

    def to(self, device: torch.device | str) -> BabiBatch:
        return BabiBatch(*(t.to(device) for t in self))


@dataclass(frozen=True)
class MemN2NConfig:
    name: str = "memn2n"
    embedding_size: int = 20
    hops: int = 3
    encoding: Literal["position", "position_code", "bow"] = "position"
    """``position``: the paper's position encoding (PE, section 4.1); ``position_code``: the
    variant in the authors' Matlab code (one J for all sentences); ``bow``: bag of words."""
    temporal: bool = True
    tying: Literal["adjacent", "layerwise"] = "adjacent"
    random_noise: float = 0.1
    """RN: the fraction of empty memories mixed into each story while training (0: off)."""
    linear_start_epochs: int = 0
    """LS: train without the softmax for at most this many evaluations (0: no LS)."""
    linear_start_patience: int = 0
    """LS: put the softmax back once the validation loss has not fallen for this many
    evaluations (0: only ``linear_start_epochs`` counts)."""
    init_std: float = 0.1
    empty_slots: bool = False
    """True: the empty memory slots (the paper's null padding up to the memory size) take
    part in the softmax with score 0, as in the authors' code; False: attention over the
    story's sentences only."""

    def validate(self) -> None:
        if self.hops < 1 or self.embedding_size < 1:
            raise ConfigError("model.hops and model.embedding_size must be >= 1")
        if not 0.0 <= self.random_noise < 1.0:
            raise ConfigError("model.random_noise must be in [0, 1)")
        if self.linear_start_patience and not self.linear_start_epochs:
            raise ConfigError("model.linear_start_patience needs model.linear_start_epochs > 0")


class MemN2N(nn.Module):
    """``MemN2N(cfg, num_words, memory_size, sentence_length)``; word id 0 is padding;
    ``sentence_length``: the longest sentence or question (J of ``position_code``)."""

    ls_evals: Tensor
    ls_best: Tensor
    ls_bad: Tensor
    ls_done: Tensor

    def __init__(
        self, cfg: MemN2NConfig, num_words: int, memory_size: int, sentence_length: int = 0
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.memory = MemoryNetwork(
            num_words,
            cfg.embedding_size,
            cfg.hops,
            memory_size,
            encoding=cfg.encoding,
            temporal=cfg.temporal,
            tying=cfg.tying,
            noise=cfg.random_noise,
            init_std=cfg.init_std,
            sentence_length=sentence_length + 1,  # + 1: the code's time-word slot
            empty_slots=cfg.empty_slots,
        )
        if cfg.linear_start_epochs > 0:
            self.memory.softmax.fill_(False)
        self.register_buffer("ls_evals", torch.tensor(0))
        self.register_buffer("ls_best", torch.tensor(float("inf")))
        self.register_buffer("ls_bad", torch.tensor(0))
        self.register_buffer("ls_done", torch.tensor(False))

    def forward(self, batch: BabiBatch) -> tuple[Tensor, Tensor]:
        """-> logits (B, V), attention (B, K, M)."""
        if self.training and bool(self.ls_done) and self.linear:
            self.memory.softmax.fill_(True)  # linear start ended at the last evaluation
        out: tuple[Tensor, Tensor] = self.memory(batch.story, batch.question)
        return out

    def loss(self, batch: BabiBatch) -> LossOutput:
        """Mean cross-entropy of the answer words."""
        logits, _ = self(batch)
        return LossOutput(F.cross_entropy(logits, batch.answers), len(batch.answers))

    def predict(self, batch: BabiBatch) -> Tensor:
        """Answer word ids (B,)."""
        return self(batch)[0].argmax(-1)

    @property
    def linear(self) -> bool:
        """True while linear start has the softmax removed."""
        return not bool(self.memory.softmax)

    def linear_start_step(self, val_loss: float) -> bool:
        """Count one evaluation of linear start; end it (the softmax is back from the next
        training step) when the validation loss has stopped falling or the epochs are
        spent. Returns True when it ended it."""
        if not self.linear or bool(self.ls_done):
            return False
        self.ls_evals += 1
        if val_loss < float(self.ls_best):
            self.ls_best.fill_(val_loss)
            self.ls_bad.zero_()
        else:
            self.ls_bad += 1
        patience = self.cfg.linear_start_patience
        if int(self.ls_evals) >= self.cfg.linear_start_epochs or (
            patience and int(self.ls_bad) >= patience
        ):
            self.ls_done.fill_(True)
            return True
        return False

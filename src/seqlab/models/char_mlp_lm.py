"""Fixed-window neural language model (Bengio et al. 2003), here over characters.

For a context of the previous n symbols w_{t-n..t-1}:

    x   = [C(w_{t-n}); ...; C(w_{t-1})]          # embedding lookup and concat, (B, n*E)
    h   = tanh(H x + d)                           # (B, H)
    y   = b + W x + U h                           # W: optional direct connections, (B, V)
    P(w_t | context) = softmax(y)

Shapes: B batch, n context length, E embedding size, H hidden units, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.decode import draw
from seqlab.errors import ConfigError


class WindowBatch(NamedTuple):
    context: torch.Tensor
    """(B, n) ids of the previous n symbols."""
    target: torch.Tensor
    """(B,) id of the next symbol."""

    def to(self, device: torch.device | str) -> WindowBatch:
        """The same batch on ``device``."""
        return WindowBatch(self.context.to(device), self.target.to(device))


@dataclass(frozen=True)
class CharMLPConfig:
    name: str = "mlp"
    context: int = 8
    embedding_size: int = 24
    hidden_size: int = 512
    dropout: float = 0.1
    direct: bool = False
    """Bengio's optional direct connections W x from the embeddings to the output."""

    def validate(self) -> None:
        if self.context < 1:
            raise ConfigError("model.context must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")


class CharMLPLM(nn.Module):
    def __init__(self, vocab_size: int, cfg: CharMLPConfig) -> None:
        super().__init__()
        self.context = cfg.context
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size)  # C
        self.hidden = nn.Linear(cfg.context * cfg.embedding_size, cfg.hidden_size)  # H, d
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden_size, vocab_size)  # U, b
        self.direct = (
            nn.Linear(cfg.context * cfg.embedding_size, vocab_size, bias=False)
            if cfg.direct
            else None
        )

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """(B, n) ids -> (B, V) logits of the next symbol."""
        x = self.embedding(context).flatten(1)  # (B, n*E)
        h = self.dropout(torch.tanh(self.hidden(x)))  # (B, H)
        logits = self.output(h)  # (B, V)
        if self.direct is not None:
            logits = logits + self.direct(x)
        return logits

    def loss(self, batch: WindowBatch) -> LossOutput:
        """Mean cross-entropy in nats per predicted symbol."""
        logits = self(batch.context)
        return LossOutput(F.cross_entropy(logits, batch.target), int(batch.target.numel()))

    def predict(self, batch: WindowBatch) -> torch.Tensor:
        return self(batch.context).argmax(-1)

    @torch.no_grad()
    def sample(
        self,
        prompt: list[int],
        length: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        pad_index: int = 0,
    ) -> list[int]:
        """Continue ``prompt`` by ``length`` symbols sampled from softmax(y / temperature)
        (greedy when temperature is 0). A prompt shorter than the window is left-padded."""
        ids = [pad_index] * max(0, self.context - len(prompt)) + list(prompt)
        out: list[int] = []
        device = self.embedding.weight.device
        for _ in range(length):
            context = torch.tensor([ids[-self.context :]], device=device)
            logits = self(context)[0]
            if temperature <= 0:
                next_id = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                next_id = int(draw(probs, generator))
            ids.append(next_id)
            out.append(next_id)
        return out

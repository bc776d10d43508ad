"""The recurrent decoder: teacher forcing equals step-by-step decoding, scheduled sampling,
configuration errors."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from seqlab.errors import ConfigError
from seqlab.nn.decoder import RecurrentDecoder

V, E, H = 11, 6, 8


def teacher_forced_and_stepwise(
    decoder: RecurrentDecoder, cell: str, memory: torch.Tensor | None, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token log-likelihoods (B, T) of gold targets: one forward pass vs T steps."""
    decoder.eval()
    g = torch.Generator().manual_seed(0)
    batch, steps = 3, 7
    hidden = torch.randn(2, batch, H, generator=g)
    init = (hidden, torch.randn(2, batch, H, generator=g)) if cell == "lstm" else hidden
    inputs = torch.randint(0, V, (batch, steps), generator=g)
    targets = torch.randint(0, V, (batch, steps), generator=g)
    with torch.no_grad():
        logits, _, _ = decoder(inputs, decoder.initial_state(init), memory, mask)
        full = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        state = decoder.initial_state(init)
        columns = []
        for t in range(steps):
            step_logits, state, _ = decoder.step(inputs[:, t], state, memory, mask)
            columns.append(-F.cross_entropy(step_logits, targets[:, t], reduction="none"))
    return full, torch.stack(columns, dim=1)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn_tanh"])
def test_teacher_forced_loss_equals_stepwise_loss(cell: str) -> None:
    torch.manual_seed(0)
    decoder = RecurrentDecoder(cell, V, E, H, num_layers=2, dropout=0.3)  # type: ignore[arg-type]
    full, stepwise = teacher_forced_and_stepwise(decoder, cell, None, None)
    torch.testing.assert_close(full, stepwise, atol=1e-5, rtol=1e-5)


def test_scheduled_sampling_feeds_model_tokens() -> None:
    torch.manual_seed(0)
    decoder = RecurrentDecoder("gru", V, E, H).eval()
    inputs = torch.randint(0, V, (4, 6))
    state = decoder.initial_state(torch.zeros(1, 4, H))
    with torch.no_grad():
        gold, _, _ = decoder(inputs, state)
        same, _, _ = decoder(inputs, state, sampling_prob=0.0)
        torch.manual_seed(1)
        mixed, _, _ = decoder(inputs, state, sampling_prob=1.0)
    torch.testing.assert_close(gold, same)
    torch.testing.assert_close(mixed[:, 0], gold[:, 0])  # the first input is always gold
    assert not torch.allclose(mixed[:, 1:], gold[:, 1:])
    with pytest.raises(ConfigError, match="probability"):
        decoder(inputs, state, sampling_prob=1.5)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="needs attention"):
        RecurrentDecoder("gru", V, E, H, style="luong")
    with pytest.raises(ConfigError, match="input feeding"):
        RecurrentDecoder("gru", V, E, H, input_feeding=True)
    with pytest.raises(ConfigError, match="style"):
        RecurrentDecoder("gru", V, E, H, style="bogus")  # type: ignore[arg-type]

"""The recurrent decoder: teacher forcing equals step-by-step decoding, scheduled sampling,
configuration errors."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from seqlab.errors import ConfigError
from seqlab.nn.attention import Attention
from seqlab.nn.decoder import RecurrentDecoder

V, E, H, M, S = 11, 6, 8, 10, 5


def attentive(cell: str, score: str, style: str, feeding: bool = False) -> RecurrentDecoder:
    torch.manual_seed(0)
    key_size = H if score in ("dot", "scaled_dot") else M
    return RecurrentDecoder(
        cell,  # type: ignore[arg-type]
        V,
        E,
        H,
        num_layers=2,
        style=style,  # type: ignore[arg-type]
        attention=Attention(score, H, key_size, 7),
        memory_size=key_size,
        input_feeding=feeding,
        dropout=0.2,
    )


def memory_of(decoder: RecurrentDecoder, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    memory = torch.randn(len(lengths), max(lengths), decoder.memory_size, generator=g)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    return memory, mask


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


ATTENTIVE = [
    ("gru", "additive", "bahdanau", False),
    ("gru", "dot", "luong", False),
    ("lstm", "general", "luong", True),
    ("lstm", "scaled_dot", "bahdanau", False),
    ("gru", "general", "luong", True),
]


@pytest.mark.parametrize(("cell", "score", "style", "feeding"), ATTENTIVE)
def test_attentive_teacher_forced_loss_equals_stepwise_loss(
    cell: str, score: str, style: str, feeding: bool
) -> None:
    decoder = attentive(cell, score, style, feeding)
    memory, mask = memory_of(decoder, [5, 2, 4])
    full, stepwise = teacher_forced_and_stepwise(decoder, cell, memory, mask)
    torch.testing.assert_close(full, stepwise, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("cell", "score", "style", "feeding"), ATTENTIVE)
def test_padding_in_the_memory_changes_nothing(
    cell: str, score: str, style: str, feeding: bool
) -> None:
    """A source padded to a longer batch gives the same logits and weights as alone; the
    weights over padding are exactly zero."""
    decoder = attentive(cell, score, style, feeding).eval()
    memory, mask = memory_of(decoder, [5, 2])
    hidden = torch.randn(2, 2, H)
    init = (hidden, torch.randn(2, 2, H)) if cell == "lstm" else hidden
    inputs = torch.randint(0, V, (2, 4))
    with torch.no_grad():
        padded = memory.clone()
        padded[1, 2:] = 1e3  # garbage at the padded positions of the short source
        logits, _, weights = decoder(inputs, decoder.initial_state(init, padded), padded, mask)
        alone_init = tuple(h[:, 1:] for h in init) if isinstance(init, tuple) else init[:, 1:]
        short = padded[1:, :2]
        logits_alone, _, weights_alone = decoder(
            inputs[1:], decoder.initial_state(alone_init, short), short, mask[1:, :2]
        )
    assert weights is not None and weights_alone is not None
    torch.testing.assert_close(logits[1:], logits_alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights[1:, :, :2], weights_alone, atol=1e-6, rtol=1e-5)
    assert bool((weights[1, :, 2:] == 0).all())
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4))


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
    with pytest.raises(ConfigError, match="reads no memory"):
        RecurrentDecoder("gru", V, E, H, attention=Attention("dot", H, H), memory_size=H)
    with pytest.raises(ConfigError, match="style"):
        RecurrentDecoder("gru", V, E, H, style="bogus")  # type: ignore[arg-type]


def test_reordering_hypotheses_keeps_the_per_source_keys() -> None:
    """Beam search moves rows only within a source: the projected keys (the same on every
    row of a source) stay, the rest is reordered as select_state reorders it."""
    decoder = attentive("lstm", "general", "luong", feeding=True).eval()
    memory, _ = memory_of(decoder, [5, 5, 3, 3])  # two sources, two hypotheses each
    memory[1], memory[3] = memory[0], memory[2]
    g = torch.Generator().manual_seed(1)
    init = (torch.randn(2, 4, H, generator=g), torch.randn(2, 4, H, generator=g))
    state = decoder.initial_state(init, memory)
    assert state.keys is not None and state.feed is not None
    index = torch.tensor([1, 1, 3, 2])  # parents within each source's rows
    selected = decoder.select_state(state, index)
    reordered = decoder.reorder_hypotheses(state, index)
    assert reordered.keys is state.keys
    torch.testing.assert_close(reordered.keys, selected.keys)
    torch.testing.assert_close(reordered.feed, selected.feed)
    for ours, theirs in zip(reordered.hidden, selected.hidden, strict=True):
        torch.testing.assert_close(ours, theirs)

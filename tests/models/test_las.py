"""The shared model battery for Listen, Attend and Spell, with and without the CTC loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqlab.data.batching import pad_batch
from seqlab.errors import ConfigError
from seqlab.models.las import EOS, LAS, LASConfig, SpeechBatch
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_overfits,
    assert_save_load_identical,
)

LENGTHS = [23, 17, 12, 9, 5]
TEXTS = [[3, 4, 5], [6, 7], [8, 9, 10], [11], [12, 3]]  # ids of digit characters


def make_batch(frames: list[torch.Tensor], texts: list[list[int]]) -> SpeechBatch:
    features = torch.nn.utils.rnn.pad_sequence(frames, batch_first=True)
    lengths = torch.tensor([f.size(0) for f in frames])
    return SpeechBatch(features, lengths, pad_batch([t + [EOS] for t in texts], 0))


def frames() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(n, 6, generator=generator) for n in LENGTHS]


def build(cfg: LASConfig) -> LAS:
    torch.manual_seed(0)
    return LAS(cfg, 6, 13)


CONFIGS = {
    "las": LASConfig(
        listener_hidden=8,
        listener_layers=2,
        embedding_size=6,
        decoder_hidden=12,
        attention_size=8,
        dropout=0.0,
    ),
    "las-ctc-general": LASConfig(
        listener_hidden=8,
        listener_layers=2,
        embedding_size=6,
        decoder_hidden=12,
        attention="general",
        ctc_weight=0.3,
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_battery(name: str, tmp_path: Path) -> None:
    cfg = CONFIGS[name]
    model = build(cfg)
    batch = make_batch(frames(), TEXTS)
    logits, weights = model(batch)
    assert logits.shape == (5, 4, 13) and weights.shape == (5, 4, 6)  # ceil(23 / 4) = 6
    assert not weights[4, :, 2:].any()  # 5 frames -> 2 listener steps: no weight on padding
    assert_all_parameters_get_gradient(model, batch)
    model.eval()
    with torch.no_grad():  # a padded batch equals each utterance alone
        together, _ = model(batch)
        for i, (one, text) in enumerate(zip(frames(), TEXTS, strict=True)):
            alone, _ = model(make_batch([one], [text]))
            torch.testing.assert_close(together[i, : len(text) + 1], alone[0], atol=1e-5, rtol=1e-4)
    assert_save_load_identical(model, lambda: build(cfg), lambda m: m(batch)[0], tmp_path)
    assert_overfits(model, batch, steps=300, lr=0.05, below=0.02)
    model.eval()
    assert model.predict(batch) == TEXTS  # greedy decoding spells what it learned
    beam = build(cfg.__class__(**{**cfg.__dict__, "beam_size": 3}))
    beam.load_state_dict(model.state_dict())
    beam.eval()
    assert beam.predict(batch) == TEXTS


def test_decoding_returns_attention_per_step() -> None:
    model = build(CONFIGS["las"]).eval()
    decoded = model.decode(make_batch(frames()[:2], TEXTS[:2]))
    for output, length in zip(decoded, [6, 5], strict=True):
        assert output.attention is not None
        assert output.attention.shape[1] == 6  # over the padded listener steps
        assert not output.attention[:, length:].any()
        torch.testing.assert_close(output.attention.sum(1), torch.ones(len(output.attention)))


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="model.attention must be one of"):
        LASConfig(attention="cosine").validate()
    with pytest.raises(ConfigError, match="ctc_weight"):
        LASConfig(ctc_weight=1.5).validate()

"""The shared model battery for the Show-Attend-Tell captioner: CNN encoder over images and
precomputed features (vectors, maps) from .npy; it overfits a tiny set and then writes it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from seqlab.data.batching import pad_batch
from seqlab.models.captioner import CaptionBatch, Captioner, CaptionerConfig
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_overfits,
    assert_save_load_identical,
)

PAD, UNK, BOS, EOS = 0, 1, 2, 3
CAPTIONS = [[4, 5, 6], [7, 5], [8, 9, 10, 11], [4, 11]]
SMALL = CaptionerConfig(
    channels=8, conv_layers=2, embedding_size=6, hidden_size=12, attention_size=8, dropout=0.0
)
_GEN = torch.Generator().manual_seed(0)  # the same inputs whatever ran before
INPUTS = {  # encoder -> inputs (B, ...) and the (rows, columns) of their annotation grid
    "cnn": (torch.rand(4, 8, 12, generator=_GEN), (4, 6)),
    "features-vector": (torch.rand(4, 5, generator=_GEN), (1, 1)),
    "features-map": (torch.rand(4, 7, 5, generator=_GEN), (1, 7)),
    "features-grid": (torch.rand(4, 2, 3, 5, generator=_GEN), (2, 3)),
}


def build(cfg: CaptionerConfig) -> Captioner:
    torch.manual_seed(0)
    return Captioner(cfg, 5, 12, BOS, EOS, PAD)


@pytest.mark.parametrize("name", list(INPUTS))
def test_battery_and_overfit(name: str, tmp_path: Path) -> None:
    inputs, grid = INPUTS[name]
    cfg = dataclasses.replace(SMALL, encoder="cnn" if name == "cnn" else "features")
    model = build(cfg)
    batch = CaptionBatch(inputs, pad_batch([c + [EOS] for c in CAPTIONS], PAD))
    logits, weights = model(batch)
    assert model.grid(inputs) == grid
    assert logits.shape == (4, 5, 12) and weights is not None
    assert weights.shape == (4, 5, grid[0] * grid[1])
    if name == "features-vector":  # one location: attention weight 1, the score unused
        assert bool((weights == 1).all())
        model.loss(batch).loss.backward()
        for param_name, param in model.named_parameters():
            assert (param.grad is not None and bool(param.grad.any())) == (
                "attention.score" not in param_name
            ), param_name
    else:
        assert_all_parameters_get_gradient(model, batch)
    model.eval()  # batch normalisation: its running statistics, so examples are independent
    with torch.no_grad():  # a padded batch equals each caption alone
        logits = model(batch)[0]
        for i, caption in enumerate(CAPTIONS):
            alone = CaptionBatch(inputs[i : i + 1], pad_batch([caption + [EOS]], PAD))
            torch.testing.assert_close(logits[i, : len(caption) + 1], model(alone)[0][0])
    assert_save_load_identical(model, lambda: build(cfg), lambda m: m(batch)[0], tmp_path)
    if name in ("cnn", "features-grid"):  # a single vector cannot tell 4 random inputs apart
        assert_overfits(model, batch, steps=300, lr=0.03, below=0.02)
        model.eval()
        assert model.predict(batch) == CAPTIONS
        decoded = model.decode(inputs)
        assert decoded[0].attention is not None
        assert decoded[0].attention.shape == (4, grid[0] * grid[1])  # 3 words and <eos>


def test_cnn_features_know_where_they_are() -> None:
    """The same blob at two places gives different annotation vectors at its location
    (coordinate channels); a plain CNN would give the same ones, shifted."""
    from seqlab.nn.image_encoder import ConvEncoder

    torch.manual_seed(0)
    encoder = ConvEncoder(8, num_layers=2)
    left, right = torch.zeros(1, 8, 16), torch.zeros(1, 8, 16)
    left[0, 2:6, 2:6] = 1.0
    right[0, 2:6, 10:14] = 1.0
    maps = encoder.feature_map(left), encoder.feature_map(right)  # (1, 8, 4, 8) each
    assert maps[0].shape == (1, 8, 4, 8)
    assert not torch.allclose(maps[0][..., 1:3], maps[1][..., 5:7], atol=1e-3)

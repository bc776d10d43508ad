"""The shared model battery for the sequence autoencoder, and greedy reconstruction."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqlab.data.batching import pad_batch
from seqlab.errors import ConfigError
from seqlab.models.seq_autoencoder import (
    SeqAEBatch,
    SeqAutoencoder,
    SeqAutoencoderConfig,
    reverse_padded,
)
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

PAD, BOS, EOS = 0, 2, 3
ROWS = [[4, 5, 6, 7, 8], [9, 10], [11, 12, 5], [6], [7, 8, 9, 10], [12, 11, 4, 5, 6, 7]]
CFG = SeqAutoencoderConfig(embedding_size=8, hidden_size=16)


def batch_of(rows: list[list[int]]) -> SeqAEBatch:
    return SeqAEBatch(
        pad_batch(rows, PAD),
        pad_batch([[BOS, *r] for r in rows], PAD).ids,
        pad_batch([[*r, EOS] for r in rows], PAD).ids,
    )


def build(cfg: SeqAutoencoderConfig = CFG) -> SeqAutoencoder:
    torch.manual_seed(0)
    return SeqAutoencoder(cfg, 13, PAD, BOS, EOS)


def test_shapes_and_loss_counts_words_and_eos() -> None:
    model = build()
    batch = batch_of(ROWS)
    assert model.logits(batch).shape == (6, 7, 13)
    out = model.loss(batch)
    assert out.n == sum(len(r) + 1 for r in ROWS)
    assert float(out.loss.detach()) == pytest.approx(torch.log(torch.tensor(13.0)).item(), rel=0.1)


def test_every_parameter_gets_a_gradient() -> None:
    assert_all_parameters_get_gradient(build(), batch_of(ROWS))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padded_batch_equals_singles(cell: str) -> None:
    model = build(SeqAutoencoderConfig(embedding_size=8, hidden_size=16, cell=cell))  # type: ignore[arg-type]
    model.eval()

    def target_logprobs(b: SeqAEBatch) -> torch.Tensor:  # (B, T+1): cut to each length
        logp = torch.log_softmax(model.logits(b), -1)
        return logp.gather(-1, b.target.clamp(min=0)[..., None])[..., 0]

    assert_batch_equals_singles(target_logprobs, batch_of(ROWS), [batch_of([r]) for r in ROWS])


def test_overfits_and_then_reconstructs_exactly() -> None:
    model = build()
    batch = batch_of(ROWS)
    assert_overfits(model, batch, steps=400, lr=0.02, below=0.02)
    model.eval()
    assert model.predict(batch) == ROWS


def test_save_load_identical(tmp_path: Path) -> None:
    batch = batch_of(ROWS)
    assert_save_load_identical(build(), build, lambda m: m.logits(batch), tmp_path)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="tie_embeddings needs"):
        SeqAutoencoderConfig(embedding_size=8, hidden_size=16, tie_embeddings=True).validate()
    tied = build(SeqAutoencoderConfig(embedding_size=16, hidden_size=16, tie_embeddings=True))
    assert tied.output.weight is tied.embedding.weight


def test_reverse_source_reads_backwards_within_each_length() -> None:
    source = pad_batch([[4, 5, 6], [7, 8]], PAD)
    assert reverse_padded(source).tolist() == [[6, 5, 4], [8, 7, PAD]]
    model = build(SeqAutoencoderConfig(embedding_size=8, hidden_size=16, reverse_source=True))
    model.eval()
    batch = batch_of(ROWS)
    alone = [model.encode(batch_of([r]).source)[0] for r in ROWS]  # h: (1, 1, H) each
    torch.testing.assert_close(model.encode(batch.source)[0], torch.cat(alone, 1))
    forward = build()
    forward.load_state_dict(model.state_dict())
    assert not torch.allclose(forward.encode(batch.source)[0], model.encode(batch.source)[0])
    assert_overfits(model, batch, steps=400, lr=0.02, below=0.02)
    model.eval()
    assert model.predict(batch) == ROWS


def test_feed_code_gives_every_decoder_step_the_code() -> None:
    cfg = SeqAutoencoderConfig(embedding_size=8, hidden_size=16, feed_code=True)
    model = build(cfg)
    assert model.decoder.input_size == 8 + 16
    batch = batch_of(ROWS)
    assert_all_parameters_get_gradient(model, batch)
    model.eval()

    def target_logprobs(b: SeqAEBatch) -> torch.Tensor:
        logp = torch.log_softmax(model.logits(b), -1)
        return logp.gather(-1, b.target.clamp(min=0)[..., None])[..., 0]

    assert_batch_equals_singles(target_logprobs, batch, [batch_of([r]) for r in ROWS])
    with torch.no_grad():  # the code reaches a late step directly: changing the source
        other = batch_of([[12, 11, 10, 9, 8], *ROWS[1:]])  # changes step 3's distribution
        assert not torch.allclose(model.logits(batch)[0, 3], model.logits(other)[0, 3])
    assert_overfits(model, batch, steps=400, lr=0.02, below=0.02)
    model.eval()
    assert model.predict(batch) == ROWS


@pytest.mark.parametrize(("cell", "layers"), [("lstm", 2), ("gru", 1)])
def test_code_round_trip_and_decoding_from_codes(cell: str, layers: int) -> None:
    model = build(
        SeqAutoencoderConfig(embedding_size=8, hidden_size=16, cell=cell, num_layers=layers)
    )
    model.eval()
    batch = batch_of(ROWS)
    state = model.encode(batch.source)
    code = model.state_to_code(state)
    assert code.shape == (len(ROWS), model.code_size())
    assert model.code_size() == (2 if cell == "lstm" else 1) * layers * 16
    back = model.code_to_state(code)
    pairs = zip(back, state, strict=True) if cell == "lstm" else [(back, state)]
    for got, want in pairs:
        assert torch.equal(got, want)
    # greedy decoding from the codes is predict; sampling at a tiny temperature is greedy
    limit = int(batch.source.lengths.max()) + CFG.max_decode + 1
    assert model.decode(back, limit) == model.predict(batch)
    cold = model.decode(back, limit, 1e-4, torch.Generator().manual_seed(0))
    assert cold == model.predict(batch)
    hot = [model.decode(back, limit, 5.0, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert hot[0] == hot[1] != hot[2]

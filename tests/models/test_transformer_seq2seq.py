"""The Transformer encoder-decoder: the shared battery, padding, label smoothing, and
decoding through seqlab.decode (cached steps equal the teacher-forced pass, beam width 1
equals greedy, a padded batch decodes as each source alone)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from seqlab.data.batching import pad_batch
from seqlab.decode import beam_search_batch, greedy_batch
from seqlab.errors import ConfigError
from seqlab.models.seq2seq import Seq2SeqBatch
from seqlab.models.transformer_seq2seq import TransformerSeq2Seq, TransformerSeq2SeqConfig
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

PAD, BOS, EOS = 0, 2, 3
SRC_V, TGT_V = 13, 11

CONFIGS = {
    "pre_norm_tied": TransformerSeq2SeqConfig(
        d_model=16,
        num_heads=2,
        encoder_layers=2,
        decoder_layers=2,
        dim_feedforward=24,
        dropout=0.1,
        max_positions=32,
    ),  # fmt: skip
    "post_norm_learned_untied": TransformerSeq2SeqConfig(
        d_model=12,
        num_heads=3,
        encoder_layers=1,
        decoder_layers=2,
        dim_feedforward=20,
        dropout=0.1,
        norm_first=False,
        positions="learned",
        tie_embeddings=False,
        activation="gelu",
        max_positions=32,
        fused=False,
    ),  # fmt: skip
}


def build(name: str) -> TransformerSeq2Seq:
    torch.manual_seed(0)
    return TransformerSeq2Seq(CONFIGS[name], SRC_V, TGT_V, PAD)


def make_batch(sources: list[list[int]], targets: list[list[int]]) -> Seq2SeqBatch:
    return Seq2SeqBatch(
        pad_batch(sources, PAD),
        pad_batch([[BOS, *t] for t in targets], PAD).ids,
        pad_batch([[*t, EOS] for t in targets], PAD).ids,
    )


def examples(n: int = 6, seed: int = 0) -> tuple[list[list[int]], list[list[int]]]:
    g = torch.Generator().manual_seed(seed)
    sources, targets = [], []
    for _ in range(n):
        s_len, t_len = (int(x) for x in torch.randint(1, 7, (2,), generator=g))
        sources.append(torch.randint(4, SRC_V, (s_len,), generator=g).tolist())
        targets.append(torch.randint(4, TGT_V, (t_len,), generator=g).tolist())
    return sources, targets


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shapes_and_every_parameter_gets_a_gradient(name: str) -> None:
    model = build(name)
    batch = make_batch(*examples())
    logits, weights = model(batch)
    assert logits.shape == (6, batch.target_in.size(1), TGT_V) and weights is None
    assert_all_parameters_get_gradient(model, batch)
    if CONFIGS[name].tie_embeddings:
        assert model.output.weight is model.target_embedding.weight


@pytest.mark.parametrize("name", list(CONFIGS))
def test_padded_batch_equals_examples_alone(name: str) -> None:
    model = build(name).eval()
    sources, targets = examples(seed=1)
    singles = [make_batch([s], [t]) for s, t in zip(sources, targets, strict=True)]

    def token_logprobs(batch: Seq2SeqBatch) -> torch.Tensor:
        logits, _ = model(batch)
        return torch.log_softmax(logits, -1).gather(-1, batch.target_out.unsqueeze(-1))[..., 0]

    assert_batch_equals_singles(token_logprobs, make_batch(sources, targets), singles)


def test_overfits_ten_pairs() -> None:
    cfg = dataclasses.replace(CONFIGS["pre_norm_tied"], label_smoothing=0.0)
    torch.manual_seed(0)
    model = TransformerSeq2Seq(cfg, SRC_V, TGT_V, PAD)
    sources, targets = examples(10, seed=2)
    assert_overfits(model, make_batch(sources, targets), steps=300, lr=1e-2, below=0.05)


def test_save_load_gives_identical_outputs(tmp_path: Path) -> None:
    batch = make_batch(*examples())
    name = "post_norm_learned_untied"
    assert_save_load_identical(build(name), lambda: build(name), lambda m: m(batch)[0], tmp_path)


def test_label_smoothing_in_training_only() -> None:
    """Training: (1-eps) NLL + eps mean_k(-log p_k) over the real tokens; eval: plain NLL."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(CONFIGS["pre_norm_tied"], dropout=0.0)
    model = TransformerSeq2Seq(cfg, SRC_V, TGT_V, PAD)
    batch = make_batch(*examples())
    model.eval()
    logits, _ = model(batch)
    logp = torch.log_softmax(logits, -1)
    real = batch.target_out != PAD
    nll = -logp.gather(-1, batch.target_out.unsqueeze(-1))[..., 0][real]
    torch.testing.assert_close(model.loss(batch).loss, nll.mean())
    with torch.no_grad():
        total, count = model.token_nll(batch)
    assert total == pytest.approx(float(nll.detach().sum()), rel=1e-5)
    assert count == int(real.sum())
    model.train()
    eps = model.cfg.label_smoothing
    smoothed = (1 - eps) * nll.mean() + eps * (-logp[real].mean(-1)).mean()
    torch.testing.assert_close(model.loss(batch).loss, smoothed)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cached_steps_equal_the_teacher_forced_pass(name: str) -> None:
    """Feeding the gold tokens one step at a time gives the teacher-forced logits; the
    step's attention weights are a distribution over the real source positions."""
    model = build(name).eval()
    sources, targets = examples(seed=4)
    batch = make_batch(sources, targets)
    with torch.no_grad():
        full, _ = model(batch)
        memory, mask, state = model.encode(batch.source)
        for t in range(batch.target_in.size(1)):
            logits, state, weights = model.step(batch.target_in[:, t], state, memory, mask)
            torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)
            assert weights is not None
            torch.testing.assert_close(weights.sum(-1), torch.ones(len(sources)))
            assert bool((weights[~mask] == 0).all())


def test_decoding_a_padded_batch_equals_each_source_alone() -> None:
    model = build("pre_norm_tied").eval()
    with torch.no_grad():
        model.target_embedding.weight.mul_(3.0)  # peaked distributions: no near-ties
    sources, _ = examples(5, seed=3)
    src = pad_batch(sources, PAD)
    limits = torch.full((5,), 7)
    with torch.no_grad():
        memory, mask, state = model.encode(src)
        greedy = greedy_batch(model, state, memory, mask, bos=BOS, eos=EOS, max_lengths=limits)
        beam = beam_search_batch(
            model, state, memory, mask, bos=BOS, eos=EOS, max_lengths=limits, beam_size=4
        )
        narrow = beam_search_batch(
            model, state, memory, mask, bos=BOS, eos=EOS, max_lengths=limits, beam_size=1
        )
        for i, source in enumerate(sources):
            m, k, s = model.encode(pad_batch([source], PAD))
            one = greedy_batch(model, s, m, k, bos=BOS, eos=EOS, max_lengths=limits[:1])[0]
            assert one.tokens == greedy[i].tokens
            assert one.logprob == pytest.approx(greedy[i].logprob, abs=1e-5)
            assert one.attention is not None and greedy[i].attention is not None
            torch.testing.assert_close(
                greedy[i].attention[:, : len(source)], one.attention, atol=1e-5, rtol=1e-5
            )
            best = beam_search_batch(
                model, s, m, k, bos=BOS, eos=EOS, max_lengths=limits[:1], beam_size=4
            )[0][0]
            assert best.tokens == beam[i][0].tokens
    assert [b[0].tokens for b in narrow] == [g.tokens for g in greedy]


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        TransformerSeq2SeqConfig(d_model=10, num_heads=4).validate()
    with pytest.raises(ConfigError, match="label_smoothing"):
        TransformerSeq2SeqConfig(label_smoothing=1.0).validate()

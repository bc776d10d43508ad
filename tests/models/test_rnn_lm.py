"""RNN language model: battery, BPTT state carrying, perplexity arithmetic, generation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.data.vocab import Vocab
from seqlab.models.rnn_lm import RNNLM, LMBatch, RNNLMConfig
from seqlab.tasks.rnn_lm import LMData, RNNLMDataConfig, RNNLMTask
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_overfits,
    assert_save_load_identical,
)

V = 11


def build(**kwargs: object) -> RNNLM:
    torch.manual_seed(0)
    cfg = RNNLMConfig(**({"embedding_size": 16, "hidden_size": 16, "num_layers": 2} | kwargs))
    return RNNLM(V, cfg)


def windows() -> LMBatch:
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, V, (4, 9), generator=g)
    return LMBatch(ids[:, :-1], ids[:, 1:], reset=True)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "peephole_lstm"])
def test_battery(cell: str, tmp_path: Path) -> None:
    model = build(cell=cell, dropout=0.1)
    batch = windows()
    logits, _ = model(batch.inputs)
    assert logits.shape == (4, 8, V)
    assert_all_parameters_get_gradient(model, batch)
    assert_save_load_identical(
        model, lambda: build(cell=cell, dropout=0.1), lambda m: m(batch.inputs)[0], tmp_path
    )
    assert_overfits(build(cell=cell), batch, steps=400, lr=0.02, below=0.05)


def test_tied_weights_share_one_matrix(tmp_path: Path) -> None:
    model = build(tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    n_untied = sum(p.numel() for p in build().parameters())
    assert sum(p.numel() for p in model.parameters()) == n_untied - V * 16
    assert_save_load_identical(
        model, lambda: build(tie_weights=True), lambda m: m(windows().inputs)[0], tmp_path
    )


def test_carried_state_equals_one_long_pass() -> None:
    """Two BPTT windows with the state carried == one forward pass over both."""
    model = build().eval()
    ids = torch.randint(0, V, (3, 21), generator=torch.Generator().manual_seed(5))
    full, _ = model(ids[:, :-1])
    with torch.no_grad():
        first = model.loss(LMBatch(ids[:, :10], ids[:, 1:11], reset=True))
        second = model.loss(LMBatch(ids[:, 10:20], ids[:, 11:21], reset=False))
    expect = torch.nn.functional.cross_entropy(full.flatten(0, 1), ids[:, 1:].flatten())
    torch.testing.assert_close((first.loss + second.loss) / 2, expect, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        reset = model.loss(LMBatch(ids[:, 10:20], ids[:, 11:21], reset=True))
    assert not torch.allclose(reset.loss, second.loss)


def cfg(level: str = "word") -> ExperimentConfig:
    return ExperimentConfig(
        task="lm_rnn",
        data=RNNLMDataConfig(level=level, bptt=5, eval_batch_size=2),  # type: ignore[arg-type]
        model=RNNLMConfig(embedding_size=8, hidden_size=8, num_layers=1),
        optim=OptimConfig(),
        trainer=TrainerConfig(),
        eval=EvalConfig(),
    )


def test_uniform_model_has_perplexity_vocab_size() -> None:
    model = RNNLM(V, cfg().model)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
    vocab = Vocab([f"w{i}" for i in range(V)], specials=(), counts={})
    ids = torch.randint(0, V, (200,), generator=torch.Generator().manual_seed(0))
    data = LMData(vocab, "word", {"val": ids})
    metrics = RNNLMTask().evaluate(cfg(), model, data, "val")
    assert metrics["val_ppl"] == pytest.approx(V, rel=1e-5)
    assert metrics["val_loss"] == pytest.approx(math.log(V), rel=1e-5)


def test_generation_is_deterministic_by_seed(tmp_path: Path) -> None:
    from seqlab.tasks.rnn_lm import generate_stream

    vocab = Vocab(
        ["<unk>", "<eos>", "a", "b", "c", "d", "e", "f", "g", "h", "i"],
        specials=("<unk>", "<eos>"),
        counts={},
    )
    data = LMData(vocab, "word", {})
    model = build().eval()

    def run(seed: int) -> str:
        return "".join(
            generate_stream(
                model,
                data,
                prompt="a b",
                max_tokens=15,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                seed=seed,
            )
        )

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert run(1).startswith("a b")


def test_carried_state_survives_checkpoint() -> None:
    """Resuming mid-epoch restores the BPTT carry, so the next window matches."""
    model = build().eval()
    ids = torch.randint(0, V, (3, 21), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        model.loss(LMBatch(ids[:, :10], ids[:, 1:11], reset=True))
        state = model.state_dict()
        expect = model.loss(LMBatch(ids[:, 10:20], ids[:, 11:21], reset=False)).loss
    other = build().eval()
    other.load_state_dict(state)
    with torch.no_grad():
        got = other.loss(LMBatch(ids[:, 10:20], ids[:, 11:21], reset=False)).loss
    torch.testing.assert_close(got, expect, atol=0, rtol=0)

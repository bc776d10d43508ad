"""Decoder-only Transformer LM: battery, causality, cached decoding, block loss, the task."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.data.vocab import Vocab
from seqlab.decode import beam_search, greedy
from seqlab.errors import ConfigError
from seqlab.models.rnn_lm import RNNLM, LMBatch, RNNLMConfig
from seqlab.models.transformer_lm import TransformerLM, TransformerLMConfig
from seqlab.tasks.rnn_lm import LMData, RNNLMDataConfig, RNNLMTask, block_loss
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_overfits,
    assert_save_load_identical,
)

V = 11


def build(**kwargs: object) -> TransformerLM:
    torch.manual_seed(0)
    base: dict[str, object] = {
        "d_model": 16,
        "num_heads": 2,
        "num_layers": 2,
        "dim_feedforward": 32,
        "block_size": 12,
        "dropout": 0.1,
    }
    return TransformerLM(V, TransformerLMConfig(**(base | kwargs)))  # type: ignore[arg-type]


def windows() -> LMBatch:
    ids = torch.randint(0, V, (4, 9), generator=torch.Generator().manual_seed(2))
    return LMBatch(ids[:, :-1], ids[:, 1:], reset=True)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"positions": "sinusoidal", "norm_first": False, "tie_weights": False, "fused": False}],
)
def test_battery(kwargs: dict[str, object], tmp_path: Path) -> None:
    model = build(**kwargs)
    batch = windows()
    logits, state = model(batch.inputs)
    assert logits.shape == (4, 8, V) and state is None
    assert_all_parameters_get_gradient(model, batch)
    assert_save_load_identical(
        model, lambda: build(**kwargs), lambda m: m(batch.inputs)[0], tmp_path
    )
    assert_overfits(build(**kwargs), batch, steps=300, lr=0.02, below=0.05)


def test_tied_weights_and_causality() -> None:
    model = build().eval()
    assert model.decoder.weight is model.embedding.weight
    ids = windows().inputs
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % V
    with torch.no_grad():
        before, after = model(ids)[0], model(changed)[0]
    torch.testing.assert_close(before[:, :5], after[:, :5])  # the past never sees the future
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_cached_decoding_equals_the_full_pass_and_crops_at_block_size() -> None:
    model = build().eval()
    ids = torch.randint(0, V, (3, 13), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full, _ = model(ids[:, :12])  # (3, 12, V): block_size positions
        logits, state = model.start(ids[:, :4])
        steps = [logits]
        for t in range(4, 12):
            logits, state = model.step(ids[:, t], state)
            steps.append(logits)
        torch.testing.assert_close(torch.stack(steps, 1), full[:, 3:], atol=1e-5, rtol=1e-5)
        # a 13th token overflows block_size: the context restarts from the last 12 tokens
        logits, state = model.step(ids[:, 12], state)
        cropped, _ = model(ids[:, 1:13])
        torch.testing.assert_close(logits, cropped[:, -1], atol=1e-5, rtol=1e-5)
        assert state.tokens.shape == (3, 12)
    tokens = list(greedy(model, ids[:1, :3], 30))  # runs well past block_size
    assert len(tokens) == 30
    best = beam_search(model, ids[:1, :3], 30, beam_size=1)[0].tokens
    assert list(best) == tokens  # beam width 1 is greedy
    assert len(beam_search(model, ids[:1, :3], 20, beam_size=3)[0].tokens) == 20
    with pytest.raises(ConfigError, match="block_size=12"):
        model(torch.zeros(1, 13, dtype=torch.long))


def test_label_smoothing_loss_is_the_mixture_with_the_uniform() -> None:
    eps = 0.1
    model = build(label_smoothing=eps, dropout=0.0).eval()
    batch = windows()
    with torch.no_grad():
        log_probs = model(batch.inputs)[0].log_softmax(-1).flatten(0, 1)  # (N, V)
        targets = batch.targets.flatten()
        nll = -log_probs.gather(1, targets[:, None]).squeeze(1)
        expected = ((1 - eps) * nll - eps * log_probs.mean(-1)).mean()
        torch.testing.assert_close(model.loss(batch).loss, expected)
        assert not torch.allclose(expected, nll.mean())


def test_block_loss_reads_every_block_from_a_fresh_state() -> None:
    ids = torch.randint(0, V, (50,), generator=torch.Generator().manual_seed(4))
    model = build(dropout=0.0).eval()
    got = block_loss(model, ids, block_size=8, batch_size=2)  # 6 blocks of 8 targets
    with torch.no_grad():
        logits = model(ids[:48].view(6, 8))[0]
    expected = F.cross_entropy(logits.flatten(0, 1), ids[1:49])
    assert got == pytest.approx(float(expected), rel=1e-6)
    # a recurrent model carries no state into a block: the block loss is below the
    # carried-state loss only by what the context before each block is worth
    torch.manual_seed(0)
    lstm = RNNLM(V, RNNLMConfig(embedding_size=8, hidden_size=8, num_layers=1)).eval()
    with torch.no_grad():
        first = F.cross_entropy(lstm(ids[8:16].view(1, 8))[0][0], ids[9:17])
    assert block_loss(lstm, ids[8:17], 8, 4) == pytest.approx(float(first), rel=1e-6)


def test_task_reports_block_loss_and_uniform_model_scores_log_v() -> None:
    model = build(dropout=0.0)
    with torch.no_grad():
        model.embedding.weight.zero_()  # tied: the decoder gives zero logits
    vocab = Vocab([chr(97 + i) for i in range(V)], specials=(), counts={})
    ids = torch.randint(0, V, (300,), generator=torch.Generator().manual_seed(0))
    cfg = ExperimentConfig(
        task="lm_rnn",
        data=RNNLMDataConfig(level="char", bptt=12, eval_batch_size=4, eval_block_size=12),
        model=model.cfg,
        optim=OptimConfig(),
        trainer=TrainerConfig(),
        eval=EvalConfig(),
    )
    metrics = RNNLMTask().evaluate(cfg, model, LMData(vocab, "char", {"val": ids}), "val")
    assert metrics["val_loss"] == pytest.approx(math.log(V), rel=1e-5)
    assert metrics["val_block_loss"] == pytest.approx(math.log(V), rel=1e-5)
    assert metrics["val_bpc"] == pytest.approx(math.log2(V), rel=1e-5)


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        TransformerLMConfig(d_model=10, num_heads=4).validate()
    with pytest.raises(ConfigError, match="label_smoothing"):
        TransformerLMConfig(label_smoothing=1.0).validate()

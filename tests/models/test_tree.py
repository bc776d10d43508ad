"""The shared model battery for the tree models (recursive NN, RNTN, Tree-LSTM) and the RAE."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from seqlab.data.readers import parse_tree
from seqlab.errors import ConfigError, DataError
from seqlab.models.rae import RAEConfig, RAESentimentModel, collate_sentences
from seqlab.models.tree import (
    SentimentExample,
    TreeModelConfig,
    TreeSentimentModel,
    bracketed,
    collate_trees,
)
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_batch_equals_singles,
    assert_overfits,
    assert_save_load_identical,
)

TEXTS = [
    "(3 (2 it) (4 (2 's) (3 (3 fun) (2 .))))",
    "(1 (2 (2 not) (2 good)) (1 (2 at) (2 all)))",
    "(4 wonderful)",
    "(0 (0 (1 (2 a) (0 dull)) (2 mess)) (2 .))",
]
WORDS = {
    w: i + 2
    for i, w in enumerate(
        ["it", "'s", "fun", ".", "not", "good", "at", "all", "wonderful", "a", "dull", "mess"]
    )
}


def examples() -> list[SentimentExample]:
    out = []
    for text in TEXTS:
        tree = parse_tree(text, binary=True)
        tokens = tree.leaves()
        out.append(SentimentExample(tokens, [WORDS[w] for w in tokens], tree, tree.label))
    return out


CONFIGS = {
    "recnn": TreeModelConfig(name="recnn", embedding_size=6, hidden_size=6),
    "rntn": TreeModelConfig(name="rntn", embedding_size=6, hidden_size=6, tensor_std=0.1),
    "treelstm": TreeModelConfig(name="treelstm", embedding_size=6, hidden_size=5, dropout=0.2),
}


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "rae":
        return RAESentimentModel(RAEConfig(embedding_size=6, embedding_init=0.5), 16, 5)
    return TreeSentimentModel(CONFIGS[name], 16, 5)


def collate(name: str, batch: list[SentimentExample]):
    return collate_sentences(batch) if name == "rae" else collate_trees(batch)


def root_logits(model: nn.Module, batch) -> torch.Tensor:
    """(B, C) log-probabilities at each tree's root."""
    pred = model.predict(batch)  # type: ignore[operator]
    return pred.probs[pred.structure.roots].log()


@pytest.mark.parametrize("name", ["recnn", "rntn", "treelstm", "rae"])
def test_battery(name: str, tmp_path: Path) -> None:
    model = build(name)
    data = examples()
    batch = collate(name, data)
    model.eval()
    pred = model.predict(batch)  # type: ignore[operator]
    n_nodes = sum(2 * len(e.tokens) - 1 for e in data)  # binary trees: 2n - 1 nodes
    assert pred.probs.shape == (n_nodes, 5)
    torch.testing.assert_close(pred.probs.sum(-1), torch.ones(n_nodes))
    assert_all_parameters_get_gradient(model, batch)
    model.eval()
    assert_batch_equals_singles(
        lambda b: root_logits(model, b), batch, [collate(name, [e]) for e in data]
    )
    assert_save_load_identical(
        model, lambda: build(name), lambda m: root_logits(m, batch), tmp_path
    )
    assert_overfits(model, batch, steps=300, lr=0.05, below=0.05 if name != "rae" else 0.3)


@pytest.mark.parametrize("name", ["recnn", "rntn", "treelstm"])
def test_level_batched_model_equals_node_by_node(name: str) -> None:
    batch = collate_trees(examples())
    levels = build(name)
    nodes = TreeSentimentModel(
        TreeModelConfig(**{**CONFIGS[name].__dict__, "evaluation": "nodes", "dropout": 0.0}), 16, 5
    )
    nodes.load_state_dict(levels.state_dict())
    levels.eval()
    nodes.eval()
    for model in (levels, nodes):
        model.zero_grad()
        model.loss(batch).loss.backward()
    torch.testing.assert_close(
        levels.node_logits(batch), nodes.node_logits(batch), atol=1e-5, rtol=0
    )
    for (key, a), b in zip(levels.named_parameters(), nodes.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None, key
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=0)


def test_tree_models_need_trees_and_binary_sizes_must_match() -> None:
    plain = SentimentExample(["not", "good"], [6, 7], None, 1)
    with pytest.raises(DataError, match="reads parse trees.*got plain text 'not good'"):
        collate_trees([plain])
    with pytest.raises(ConfigError, match="must equal model.embedding_size"):
        TreeSentimentModel(TreeModelConfig(name="rntn", embedding_size=6, hidden_size=5), 16, 5)
    with pytest.raises(ConfigError, match="expected recnn, rntn or treelstm"):
        TreeModelConfig(name="lstm").validate()


def test_bracketed_gives_back_the_trees() -> None:
    data = examples()
    batch = collate_trees(data)
    texts = bracketed(batch.structure, batch.labels.tolist(), [e.tokens for e in data])
    assert texts == TEXTS


def test_rae_predicts_on_its_greedy_tree() -> None:
    model = build("rae")
    model.eval()
    data = [SentimentExample(e.tokens, e.ids, None, e.label) for e in examples()]  # no trees
    pred = model.predict(collate_sentences(data))  # type: ignore[operator]
    # gold only at the roots: the sentence labels
    labelled = (pred.gold != -100).nonzero().flatten()
    assert labelled.tolist() == sorted(pred.structure.roots.tolist())
    assert pred.gold[pred.structure.roots].tolist() == [e.label for e in data]
    shown = bracketed(pred.structure, [0] * pred.structure.num_nodes, [e.tokens for e in data])
    assert [parse_tree(t, binary=True).leaves() for t in shown] == [e.tokens for e in data]


def test_rae_refit_fits_the_sentence_classifier_apart_from_the_loss() -> None:
    from seqlab.contract import RefitsOnTrainingData

    torch.manual_seed(0)
    model = RAESentimentModel(
        RAEConfig(embedding_size=6, embedding_init=0.5, classifier="refit", refit_l2=1e-3), 16, 5
    )
    assert isinstance(model, RefitsOnTrainingData)
    assert not any(p.requires_grad for p in model.sentence_output.parameters())
    data = [SentimentExample(e.tokens, e.ids, None, e.label) for e in examples()]
    batches = [collate_sentences(data[:2]), collate_sentences(data[2:])]
    # the loss is the node objective alone: the sentence classifier does not change it
    before = float(model.loss(batches[0]).loss.detach())
    with torch.no_grad():
        model.sentence_output.weight.add_(1.0)
    assert float(model.loss(batches[0]).loss.detach()) == pytest.approx(before)
    model.train()
    model.refit(batches)
    assert model.training  # the mode it found
    # at the optimum of the regularised logistic regression the gradient vanishes
    model.eval()
    with torch.no_grad():
        features = torch.cat([model(b).features for b in batches])
    labels = torch.tensor([e.label for e in data])
    weight = model.sentence_output.weight.detach().clone().requires_grad_(True)
    bias = model.sentence_output.bias.detach().clone().requires_grad_(True)
    objective = nn.functional.cross_entropy(features @ weight.T + bias, labels)
    objective = objective + 0.5 * 1e-3 * weight.pow(2).sum()
    objective.backward()
    assert weight.grad is not None and bias.grad is not None
    assert float(weight.grad.abs().max()) < 1e-4 and float(bias.grad.abs().max()) < 1e-4
    # the refit classifier is the one predict uses at the roots
    pred = model.predict(collate_sentences(data))  # type: ignore[operator]
    expect = torch.softmax(features @ weight.detach().T + bias.detach(), -1)
    torch.testing.assert_close(pred.probs[pred.structure.roots], expect)


def test_rae_joint_classifier_is_left_alone_by_refit() -> None:
    model = build("rae")
    data = [SentimentExample(e.tokens, e.ids, None, e.label) for e in examples()]
    start = model.sentence_output.weight.detach().clone()
    model.refit([collate_sentences(data)])  # type: ignore[operator]
    torch.testing.assert_close(model.sentence_output.weight.detach(), start)
    with pytest.raises(ConfigError, match="model.classifier"):
        RAEConfig(classifier="both").validate()  # type: ignore[arg-type]

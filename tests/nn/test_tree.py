"""Level-batched tree composition equals node-by-node composition (outputs and gradients)."""

from __future__ import annotations

import pytest
import torch

from seqlab.data.readers import parse_tree
from seqlab.errors import DataError
from seqlab.nn.tree import (
    BinaryTreeLSTMComposition,
    Composition,
    RecursiveComposition,
    TensorComposition,
    build_structure,
    encode_levels,
    encode_nodes,
    tree_nodes,
)

TREES = [
    "(3 (2 It) (4 (2 's) (3 (3 fun) (2 .))))",
    "(1 (2 (2 Not) (2 good)) (1 (2 at) (2 all)))",
    "(4 Wonderful)",
    "(2 (2 (2 (2 a) (2 b)) (2 c)) (2 d))",
]


def structure_of(texts: list[str]):
    lists, labels, next_id = [], [], 0
    for text in texts:
        tree = parse_tree(text, binary=True)
        n = len(tree.leaves())
        nodes, node_labels = tree_nodes(tree, list(range(next_id, next_id + n)))
        next_id += n
        lists.append(nodes)
        labels.append(node_labels)
    return build_structure(lists), labels


def test_structure_orders_nodes_by_height():
    (structure, ids), labels = structure_of(TREES[:3])
    # 4 + 4 + 1 leaves; heights: tree 0 has 1, 1, 1 (its levels 1..3), tree 1 has 1, 1, 2
    assert structure.num_leaves == 9 and structure.num_nodes == 9 + 3 + 3
    assert structure.words.tolist() == list(range(9))  # leaves left to right, tree by tree
    assert structure.levels == ((9, 12), (12, 14), (14, 15))
    assert structure.tree.tolist() == [0] * 4 + [1] * 4 + [2] + [0, 1, 1, 0, 1, 0]
    assert structure.roots.tolist() == [14, 13, 8]
    children = structure.children()
    assert children[9] == (2, 3)  # (fun .)
    assert children[14] == (0, 12)  # (It ('s (fun .)))
    assert children[13] == (10, 11)
    assert all(c is None for c in children[:9])
    # labels follow the ids: the root of tree 1 is labelled 1, "fun ." 3
    assert labels[1][-1] == 1 and ids[1][-1] == 13
    assert labels[0][ids[0].index(9)] == 3


def test_tree_nodes_needs_binary_trees():
    with pytest.raises(DataError, match="has 3 children; tree models need binary trees"):
        tree_nodes(parse_tree("(2 (2 a) (2 b) (2 c))"), [0, 1, 2])


def test_build_structure_checks_child_order():
    with pytest.raises(DataError, match="not before it"):
        build_structure([[0, (0, 2), 1]])


def compositions() -> dict[str, Composition]:
    torch.manual_seed(0)
    return {
        "recnn": RecursiveComposition(6),
        "rntn": TensorComposition(6, tensor_std=0.1),
        "treelstm": BinaryTreeLSTMComposition(6, 5),
    }


@pytest.mark.parametrize("name", ["recnn", "rntn", "treelstm"])
def test_levels_equal_nodes_outputs_and_gradients(name: str):
    composition = compositions()[name]
    (structure, _), _ = structure_of(TREES)
    torch.manual_seed(1)
    leaves = torch.randn(structure.num_leaves, 6, requires_grad=True)
    weights = torch.randn(structure.num_nodes, composition.hidden_size)

    def run(encode) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        composition.zero_grad()
        leaves.grad = None
        states = encode(composition, leaves, structure)
        (states[0] * weights).sum().backward()
        grads = [leaves.grad.clone()] + [p.grad.clone() for p in composition.parameters()]
        return [s.detach() for s in states], grads

    levels, level_grads = run(encode_levels)
    nodes, node_grads = run(encode_nodes)
    assert levels[0].shape == (structure.num_nodes, composition.hidden_size)
    assert len(levels) == (2 if name == "treelstm" else 1)
    for a, b in zip(levels, nodes, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    for a, b in zip(level_grads, node_grads, strict=True):
        assert float(a.abs().sum()) > 0
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_compositions_follow_their_equations():
    comps = compositions()
    torch.manual_seed(2)
    c1, c2 = torch.randn(3, 6), torch.randn(3, 6)
    x = torch.cat([c1, c2], -1)
    recnn = comps["recnn"]
    assert isinstance(recnn, RecursiveComposition)
    expected = torch.tanh(x @ recnn.linear.weight.T + recnn.linear.bias)
    torch.testing.assert_close(recnn((c1,), (c2,))[0], expected)
    rntn = comps["rntn"]
    assert isinstance(rntn, TensorComposition)
    bilinear = torch.einsum("ki,dij,kj->kd", x, rntn.tensor, x)
    expected = torch.tanh(bilinear + x @ rntn.linear.weight.T + rntn.linear.bias)
    torch.testing.assert_close(rntn((c1,), (c2,))[0], expected, atol=1e-6, rtol=1e-5)
    lstm = comps["treelstm"]
    h1, m1 = lstm.leaf(c1)
    h2, m2 = lstm.leaf(c2)
    h, m = lstm((h1, m1), (h2, m2))
    i, f1, f2, o, u = (
        (lstm.gates.weight @ torch.cat([h1, h2], -1).T).T.add(lstm.gates.bias).chunk(5, -1)
    )
    cell = i.sigmoid() * u.tanh() + f1.sigmoid() * m1 + f2.sigmoid() * m2
    torch.testing.assert_close(m, cell)
    torch.testing.assert_close(h, o.sigmoid() * cell.tanh())

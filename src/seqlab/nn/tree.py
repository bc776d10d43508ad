"""Composition over binary trees, evaluated level by level (all nodes of one height at once).

A batch of B binary trees is flattened into N nodes ordered by height (:class:`TreeStructure`):
nodes ``0..L-1`` are the leaves (height 0, left to right within each tree, tree by tree),
then the inner nodes of height 1, 2, ... A node's children always have smaller ids, so one
pass over the heights computes every node: for each height, gather the children's states
by index, compose them in one batched call, append the results (:func:`encode_levels`).
:func:`encode_nodes` computes the same states one node at a time (the reference, and the
baseline of ``seqlab bench tree``).

Compositions (c1, c2: the children's states (K, H); K nodes composed at once):

.. code-block:: text

    recursive NN (Socher et al., 2011)   p = tanh(W [c1; c2] + b)             W (H, 2H)
    RNTN (Socher et al., 2013)           p = tanh(x^T V^[1:H] x + W x + b),  x = [c1; c2]
                                         V (H, 2H, 2H): slice k gives p_k's bilinear term
    binary Tree-LSTM (Tai et al., 2015, N-ary with N = 2; constituency: inner nodes have
    no input word, leaves no children)
        leaf:   i, o, u = sigma(W_i x + b_i), sigma(W_o x + b_o), tanh(W_u x + b_u)
                c = i * u;  h = o * tanh(c)
        inner:  g = U [h1; h2] + b for g in i, f1, f2, o, u   (U (5H, 2H))
                c = i * u + f1 * c1 + f2 * c2;  h = o * tanh(c)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlab.data.readers import Tree
from seqlab.errors import DataError

State = tuple[Tensor, ...]
"""A node state: ``(h,)`` for the recursive NN and the RNTN, ``(h, c)`` for the Tree-LSTM;
each (K, H). ``state[0]`` is what the classifier reads."""

Node = int | tuple[int, int]
"""A node of a tree in list form: a word id (leaf) or the list indices of its two children."""


@dataclass(frozen=True)
class TreeStructure:
    """B binary trees flattened into N nodes ordered by height.

    words   (L,)     word id of each leaf; leaves are nodes 0..L-1
    left    (N-L,)   left child of inner node L + k (a smaller node id)
    right   (N-L,)   right child of inner node L + k
    levels           [start, end) node ranges of heights 1, 2, ... (ids >= L)
    roots   (B,)     node id of each tree's root
    tree    (N,)     which tree each node belongs to
    """

    words: Tensor
    left: Tensor
    right: Tensor
    levels: tuple[tuple[int, int], ...]
    roots: Tensor
    tree: Tensor

    @property
    def num_leaves(self) -> int:
        return int(self.words.numel())

    @property
    def num_nodes(self) -> int:
        return int(self.tree.numel())

    @property
    def num_trees(self) -> int:
        return int(self.roots.numel())

    def to(self, device: torch.device | str) -> TreeStructure:
        return TreeStructure(
            self.words.to(device),
            self.left.to(device),
            self.right.to(device),
            self.levels,
            self.roots.to(device),
            self.tree.to(device),
        )

    def children(self) -> list[tuple[int, int] | None]:
        """Per node id: its (left, right) children, None for a leaf (python lists)."""
        pairs: list[tuple[int, int] | None] = [None] * self.num_leaves
        pairs.extend(zip(self.left.tolist(), self.right.tolist(), strict=True))
        return pairs


def build_structure(trees: Sequence[Sequence[Node]]) -> tuple[TreeStructure, list[list[int]]]:
    """Flatten trees in list form into one :class:`TreeStructure`.

    Each tree is a list of nodes, children before their parents, the root last: a word id
    for a leaf, ``(i, j)`` (list indices of the left and right child) for an inner node.
    Returns the structure and, per tree, the node id of each list entry.
    """
    keys: list[tuple[int, int, int]] = []  # (height, tree, index): the order of node ids
    for b, nodes in enumerate(trees):
        if not nodes:
            raise DataError(f"tree {b} has no nodes")
        heights: list[int] = []
        for i, node in enumerate(nodes):
            if isinstance(node, tuple):
                first, second = node
                if not (0 <= first < i and 0 <= second < i):
                    raise DataError(f"tree {b}: node {i} has children {node} not before it")
                heights.append(1 + max(heights[first], heights[second]))
            else:
                heights.append(0)
            keys.append((heights[-1], b, i))
    keys.sort()
    ids: list[list[int]] = [[0] * len(nodes) for nodes in trees]
    for node_id, (_, b, i) in enumerate(keys):
        ids[b][i] = node_id
    words: list[int] = []
    left: list[int] = []
    right: list[int] = []
    levels: list[tuple[int, int]] = []
    for node_id, (height, b, i) in enumerate(keys):
        node = trees[b][i]
        if isinstance(node, tuple):
            left.append(ids[b][node[0]])
            right.append(ids[b][node[1]])
            if len(levels) < height:  # heights are consecutive: a new level starts
                levels.append((node_id, node_id + 1))
            else:
                levels[-1] = (levels[-1][0], node_id + 1)
        else:
            words.append(node)
    structure = TreeStructure(
        words=torch.tensor(words, dtype=torch.long),
        left=torch.tensor(left, dtype=torch.long),
        right=torch.tensor(right, dtype=torch.long),
        levels=tuple(levels),
        roots=torch.tensor([ids[b][-1] for b in range(len(trees))], dtype=torch.long),
        tree=torch.tensor([b for _, b, _ in keys], dtype=torch.long),
    )
    return structure, ids


def tree_nodes(tree: Tree, word_ids: Sequence[int]) -> tuple[list[Node], list[int]]:
    """A parsed binary :class:`Tree` in list form (post-order) with its labels per entry;
    ``word_ids`` are the ids of its leaves, left to right."""
    nodes: list[Node] = []
    labels: list[int] = []
    leaves = iter(word_ids)
    # iterative post-order: (subtree, children done?)
    stack: list[tuple[Tree, bool]] = [(tree, False)]
    done: list[int] = []  # list indices of finished subtrees
    while stack:
        node, expanded = stack.pop()
        if node.word is not None:
            nodes.append(next(leaves))
        elif not expanded:
            if len(node.children) != 2:
                raise DataError(
                    f"node {str(node)[:40]!r} has {len(node.children)} children; "
                    "tree models need binary trees"
                )
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))
            continue
        else:
            right = done.pop()
            left = done.pop()
            nodes.append((left, right))
        labels.append(node.label)
        done.append(len(nodes) - 1)
    return nodes, labels


# --------------------------------------------------------------------------- compositions


class Composition(nn.Module):
    """``leaf(x (K, E)) -> State`` and ``forward(left: State, right: State) -> State``."""

    hidden_size: int

    def leaf(self, inputs: Tensor) -> State:
        raise NotImplementedError


class RecursiveComposition(Composition):
    """p = tanh(W [c1; c2] + b) (Socher et al., 2011); leaves are the word vectors (H = E)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.hidden_size = size
        self.linear = nn.Linear(2 * size, size)
        init_averaging(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def leaf(self, inputs: Tensor) -> State:
        return (inputs,)

    def forward(self, left: State, right: State) -> State:
        children = torch.cat([left[0], right[0]], dim=-1)  # (K, 2H)
        return (torch.tanh(self.linear(children)),)


class TensorComposition(Composition):
    """``p = tanh([c1; c2]^T V^[1:H] [c1; c2] + W [c1; c2] + b)`` (RNTN, Socher et al., 2013)."""

    def __init__(self, size: int, tensor_std: float = 0.01) -> None:
        super().__init__()
        self.hidden_size = size
        self.linear = nn.Linear(2 * size, size)
        self.tensor = nn.Parameter(torch.randn(size, 2 * size, 2 * size) * tensor_std)
        init_averaging(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def leaf(self, inputs: Tensor) -> State:
        return (inputs,)

    def forward(self, left: State, right: State) -> State:
        children = torch.cat([left[0], right[0]], dim=-1)  # x (K, 2H)
        size = self.hidden_size
        # x^T V^[k] x for every slice k: (K, 2H) @ (2H, H·2H) -> (K, H, 2H), then · x
        xv = (children @ self.tensor.permute(1, 0, 2).reshape(2 * size, -1)).view(
            -1, size, 2 * size
        )
        bilinear = (xv * children.unsqueeze(1)).sum(-1)  # (K, H)
        return (torch.tanh(bilinear + self.linear(children)),)


class BinaryTreeLSTMComposition(Composition):
    """Binary (N-ary, N = 2) Tree-LSTM cell of Tai et al. (2015), constituency form."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.leaf_gates = nn.Linear(input_size, 3 * hidden_size)  # i, o, u
        self.gates = nn.Linear(2 * hidden_size, 5 * hidden_size)  # i, f1, f2, o, u
        with torch.no_grad():  # forget gates start open (bias 1), as for sequence LSTMs
            self.gates.bias.zero_()
            self.gates.bias[hidden_size : 3 * hidden_size].fill_(1.0)
            self.leaf_gates.bias.zero_()

    def leaf(self, inputs: Tensor) -> State:
        i, o, u = self.leaf_gates(inputs).chunk(3, dim=-1)
        cell = torch.sigmoid(i) * torch.tanh(u)
        return (torch.sigmoid(o) * torch.tanh(cell), cell)

    def forward(self, left: State, right: State) -> State:
        gates = self.gates(torch.cat([left[0], right[0]], dim=-1))  # (K, 5H)
        i, f1, f2, o, u = gates.chunk(5, dim=-1)
        cell = (
            torch.sigmoid(i) * torch.tanh(u)
            + torch.sigmoid(f1) * left[1]
            + torch.sigmoid(f2) * right[1]
        )
        return (torch.sigmoid(o) * torch.tanh(cell), cell)


def init_averaging(weight: Tensor, noise: float | None = None) -> None:
    """W (H, 2H) = ½ [I I] + U(-r, r), r = 1/sqrt(2H): a parent starts near the mean of its
    children (Socher's code adds the identity to a small random matrix)."""
    size = weight.size(0)
    bound = noise if noise is not None else 1.0 / math.sqrt(2 * size)
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        eye = torch.eye(size, dtype=weight.dtype)
        weight[:, :size] += 0.5 * eye
        weight[:, size:] += 0.5 * eye


# --------------------------------------------------------------------------- evaluation


def encode_levels(composition: Composition, leaf_inputs: Tensor, structure: TreeStructure) -> State:
    """Every node's state, one batched call per height.

    leaf_inputs (L, E) -> state tensors (N, H) in node-id order.
    """
    states = composition.leaf(leaf_inputs)
    offset = structure.num_leaves
    for start, end in structure.levels:
        left = structure.left[start - offset : end - offset]  # (K,)
        right = structure.right[start - offset : end - offset]
        new = composition(
            tuple(s.index_select(0, left) for s in states),
            tuple(s.index_select(0, right) for s in states),
        )
        states = tuple(torch.cat([s, n]) for s, n in zip(states, new, strict=True))
    return states


def encode_nodes(composition: Composition, leaf_inputs: Tensor, structure: TreeStructure) -> State:
    """The same states as :func:`encode_levels`, computed one node at a time."""
    nodes: list[State] = [
        composition.leaf(leaf_inputs[i : i + 1]) for i in range(structure.num_leaves)
    ]
    for left, right in zip(structure.left.tolist(), structure.right.tolist(), strict=True):
        nodes.append(composition(nodes[left], nodes[right]))
    return tuple(torch.cat(parts) for parts in zip(*nodes, strict=True))

"""Recursive autoencoder (Socher et al., 2011, semi-supervised RAE) and its greedy tree.

.. code-block:: text

    encode:       p = tanh(W1 [c1; c2] + b1),  p <- p / ||p||         (.., H)
    decode:       [c1'; c2'] = tanh(W2 p + b2)                        (.., 2H)
    error:        E_rec = n1/(n1+n2) ||c1 - c1'||² + n2/(n1+n2) ||c2 - c2'||²
                  (n1, n2: the number of words under each child)
    greedy tree:  while more than one node is left, encode every adjacent pair, merge the
                  pair with the lowest E_rec into its parent p            (greedy_merge)

The RAE is a :class:`~seqlab.nn.tree.Composition`, so once the greedy tree is fixed its
nodes are recomputed with gradients level by level (``encode_levels``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.nn.tree import Composition, Node, State, TreeStructure


class RecursiveAutoencoder(Composition):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.hidden_size = size
        self.encoder = nn.Linear(2 * size, size)
        self.decoder = nn.Linear(size, 2 * size)
        bound = 1.0 / math.sqrt(2 * size)
        for layer in (self.encoder, self.decoder):
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)

    def encode(self, left: Tensor, right: Tensor) -> Tensor:
        """(.., H), (.., H) -> the normalised parent (.., H)."""
        return F.normalize(torch.tanh(self.encoder(torch.cat([left, right], -1))), dim=-1)

    def reconstruction_error(
        self, left: Tensor, right: Tensor, parent: Tensor, n_left: Tensor, n_right: Tensor
    ) -> Tensor:
        """E_rec (..,) of ``parent`` (.., H) against its children (.., H), weighted by the
        children's word counts n_left, n_right (..,)."""
        rebuilt_left, rebuilt_right = torch.tanh(self.decoder(parent)).chunk(2, dim=-1)
        total = n_left + n_right
        return (n_left / total) * (left - rebuilt_left).pow(2).sum(-1) + (n_right / total) * (
            right - rebuilt_right
        ).pow(2).sum(-1)

    def leaf(self, inputs: Tensor) -> State:
        return (inputs,)

    def forward(self, left: State, right: State) -> State:
        return (self.encode(left[0], right[0]),)


def greedy_merge(rae: RecursiveAutoencoder, leaves: Tensor, lengths: Tensor) -> list[list[Node]]:
    """The greedy RAE tree of each sentence, all sentences of the batch merged in step.

    leaves (B, T, H) word vectors, lengths (B,). Returns each sentence's tree in list form
    (nn/tree.py): entries 0..n-1 are its leaves (the entry is the word position), then one
    ``(i, j)`` entry per merge, in merge order; the last entry is the root.
    """
    batch, width, _ = leaves.shape
    with torch.no_grad():
        nodes = leaves
        index = torch.arange(width, device=leaves.device).expand(batch, width)  # list entry
        size = torch.ones(batch, width, device=leaves.device)  # words under each node
        length = lengths.clone()
        next_index = lengths.clone()
        steps: list[Tensor] = []  # per merge step: (active, left entry, right entry) (3, B)
        for _ in range(width - 1):
            active = length > 1
            if not bool(active.any()):
                break
            pairs = nodes.size(1) - 1
            left, right = nodes[:, :-1], nodes[:, 1:]  # (B, M, H)
            n_left, n_right = size[:, :-1], size[:, 1:]
            parent = rae.encode(left, right)
            error = rae.reconstruction_error(left, right, parent, n_left, n_right)  # (B, M)
            position = torch.arange(pairs, device=leaves.device).unsqueeze(0)  # (1, M)
            error = error.masked_fill(position >= (length - 1).unsqueeze(1), math.inf)
            best = error.argmin(1, keepdim=True)  # (B, 1)
            steps.append(
                torch.stack(
                    [active.long(), index.gather(1, best)[:, 0], index.gather(1, best + 1)[:, 0]]
                )
            )
            # drop position best + 1 and put the parent at position best
            source = position + (position > best).long()  # (B, M)
            merged = active.unsqueeze(1) & (position == best)  # (B, M)
            nodes = torch.where(
                merged.unsqueeze(-1),
                parent,
                nodes.gather(1, source.unsqueeze(-1).expand(-1, -1, nodes.size(-1))),
            )
            index = torch.where(merged, next_index.unsqueeze(1), index.gather(1, source))
            size = torch.where(merged, n_left + n_right, size.gather(1, source))
            next_index = next_index + active.long()
            length = length - active.long()
    trees: list[list[Node]] = [list(range(n)) for n in lengths.tolist()]
    for active_, left_, right_ in (step.tolist() for step in steps):
        for b in range(batch):
            if active_[b]:
                trees[b].append((left_[b], right_[b]))
    return trees


def subtree_sizes(structure: TreeStructure) -> Tensor:
    """(N,) the number of words under each node, level by level."""
    sizes = torch.ones(structure.num_leaves, device=structure.words.device)
    offset = structure.num_leaves
    for start, end in structure.levels:
        left = structure.left[start - offset : end - offset]
        right = structure.right[start - offset : end - offset]
        sizes = torch.cat([sizes, sizes[left] + sizes[right]])
    return sizes

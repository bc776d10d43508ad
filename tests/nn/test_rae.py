"""The RAE's greedy merge on a hand-worked example, and its error and sizes."""

from __future__ import annotations

import torch

from seqlab.nn.rae import RecursiveAutoencoder, greedy_merge, subtree_sizes
from seqlab.nn.tree import build_structure


def hand_rae() -> RecursiveAutoencoder:
    """H = 1, W1 = [1 1], b1 = 0: p = tanh(c1 + c2) / |.| = 1 for c1 + c2 > 0; W2 = 0,
    b2 = 0: c1' = c2' = 0, so E_rec = n1/(n1+n2) c1² + n2/(n1+n2) c2²."""
    rae = RecursiveAutoencoder(1)
    with torch.no_grad():
        rae.encoder.weight.fill_(1.0)
        rae.encoder.bias.zero_()
        rae.decoder.weight.zero_()
        rae.decoder.bias.zero_()
    return rae


def test_greedy_merge_hand_worked_example():
    # sentence 0: a=1.1 b=0.3 c=0.1 d=0.1
    #   step 1: (a,b) .5(1.21+.09)=.65  (b,c) .5(.09+.01)=.05  (c,d) .5(.01+.01)=.01 -> (c,d)=4, p=1
    #   step 2: (a,b) .65  (b,4) weighted by size 1/3·.09 + 2/3·1 = .6967 -> (a,b)=5
    #           (unweighted, .5·.09 + .5·1 = .545 would have merged (b,4))
    #   step 3: (5,4) = 6
    # sentence 1: .9 .1 .1 -> (1,2) .01 < (0,1) .41 -> 3; then (0,3) = 4
    # sentence 2: one word, no merge. Padding is 0, which would be merged first if unmasked.
    leaves = torch.tensor(
        [[1.1, 0.3, 0.1, 0.1], [0.9, 0.1, 0.1, 0.0], [0.5, 0.0, 0.0, 0.0]]
    ).unsqueeze(-1)
    trees = greedy_merge(hand_rae(), leaves, torch.tensor([4, 3, 1]))
    assert trees == [
        [0, 1, 2, 3, (2, 3), (0, 1), (5, 4)],
        [0, 1, 2, (1, 2), (0, 3)],
        [0],
    ]


def test_reconstruction_error_and_subtree_sizes():
    rae = hand_rae()
    c1, c2 = torch.tensor([[0.3]]), torch.tensor([[1.0]])
    parent = rae.encode(c1, c2)
    torch.testing.assert_close(parent, torch.tensor([[1.0]]))
    error = rae.reconstruction_error(c1, c2, parent, torch.tensor([1.0]), torch.tensor([2.0]))
    torch.testing.assert_close(error, torch.tensor([0.09 / 3 + 2.0 / 3]))
    structure, _ = build_structure([[7, 8, 9, 5, (2, 3), (0, 1), (5, 4)], [4]])
    sizes = subtree_sizes(structure)
    assert sizes[structure.roots].tolist() == [4.0, 1.0]
    assert sorted(sizes.tolist()) == [1.0] * 5 + [2.0, 2.0, 4.0]


def test_greedy_tree_uses_the_trained_encoder():
    """A random RAE merges greedily too: every sentence gets n - 1 merges, each node used once."""
    torch.manual_seed(0)
    rae = RecursiveAutoencoder(4)
    lengths = torch.tensor([6, 2, 5])
    trees = greedy_merge(rae, torch.randn(3, 6, 4), lengths)
    for tree, n in zip(trees, lengths.tolist(), strict=True):
        merges = [e for e in tree if isinstance(e, tuple)]
        assert len(merges) == n - 1
        children = [c for pair in merges for c in pair]
        assert sorted(children) == list(range(2 * n - 2))

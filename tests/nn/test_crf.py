"""CRF: forward algorithm and Viterbi against brute-force enumeration of every tag path."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqlab.errors import DataError
from seqlab.nn.crf import CRF


def brute_force(crf: CRF, emissions: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """(log Z, best path) of one sequence (T, K) by enumerating all K^T paths."""
    steps, tags = emissions.shape
    scores, paths = [], []
    for path in itertools.product(range(tags), repeat=steps):
        tensor = torch.tensor(path).unsqueeze(0)
        mask = torch.ones(1, steps, dtype=torch.bool)
        scores.append(crf.score(emissions.unsqueeze(0), tensor, mask)[0])
        paths.append(list(path))
    stacked = torch.stack(scores)
    return torch.logsumexp(stacked, 0), paths[int(stacked.argmax())]


@pytest.mark.parametrize("lengths", [[1], [3], [4, 2, 1]])
def test_forward_and_viterbi_match_brute_force(lengths: list[int]) -> None:
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    steps = max(lengths)
    emissions = torch.randn(len(lengths), steps, 3)
    mask = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]
    log_z = crf.log_partition(emissions, mask)
    best = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        expected_z, expected_path = brute_force(crf, emissions[b, :n])
        torch.testing.assert_close(log_z[b], expected_z, atol=1e-5, rtol=1e-5)
        assert best[b, :n].tolist() == expected_path
        assert best[b, n:].eq(0).all()


def test_score_by_hand() -> None:
    crf = CRF(2)
    with torch.no_grad():
        crf.transitions.copy_(torch.tensor([[0.1, 0.2], [0.3, 0.4]]))
        crf.start.copy_(torch.tensor([1.0, 2.0]))
        crf.end.copy_(torch.tensor([-1.0, -2.0]))
    emissions = torch.tensor([[[0.5, 0.6], [0.7, 0.8], [9.0, 9.0]]])
    tags = torch.tensor([[1, 0, 1]])
    mask = torch.tensor([[True, True, False]])
    # start[1] + e0[1] + trans[1,0] + e1[0] + end[0]
    expected = 2.0 + 0.6 + 0.3 + 0.7 - 1.0
    assert float(crf.score(emissions, tags, mask)[0].detach()) == pytest.approx(expected)


def test_nll_is_nonnegative_and_probabilities_sum_to_one() -> None:
    torch.manual_seed(1)
    crf = CRF(2)
    emissions = torch.randn(1, 3, 2)
    mask = torch.ones(1, 3, dtype=torch.bool)
    total = sum(
        float(torch.exp(-crf.nll(emissions, torch.tensor([p]), mask)[0].detach()))
        for p in itertools.product(range(2), repeat=3)
    )
    assert total == pytest.approx(1.0, abs=1e-5)


def test_empty_sequence_is_an_error() -> None:
    crf = CRF(2)
    with pytest.raises(DataError, match="at least one token"):
        crf.log_partition(torch.zeros(1, 2, 2), torch.zeros(1, 2, dtype=torch.bool))

"""The pyramidal BiLSTM listener: frame stacking, 2^L time reduction, padding-free results."""

from __future__ import annotations

import pytest
import torch

from seqlab.nn.listener import PyramidalLSTM, stack_frames


def test_stack_frames_pairs_neighbours_and_pads_odd_lengths() -> None:
    frames = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    stacked, lengths = stack_frames(frames, torch.tensor([5, 4]))
    assert stacked.shape == (2, 3, 6) and lengths.tolist() == [3, 2]
    torch.testing.assert_close(stacked[0, 1], torch.cat([frames[0, 2], frames[0, 3]]))
    torch.testing.assert_close(stacked[0, 2], torch.cat([frames[0, 4], torch.zeros(3)]))


@pytest.mark.parametrize(
    ("layers", "steps", "expected"), [(1, 9, 5), (2, 9, 3), (3, 40, 5), (3, 41, 6)]
)
def test_time_reduction(layers: int, steps: int, expected: int) -> None:
    listener = PyramidalLSTM(4, 6, layers)
    output, lengths = listener(torch.randn(2, steps, 4), torch.tensor([steps, 3]))
    assert listener.reduction == 2**layers
    assert output.shape == (2, expected, 12)
    assert lengths.tolist() == [expected, -(-3 // 2**layers)]
    assert not output[1, lengths[1] :].any()  # zero after the shorter sequence's end


def test_padded_batch_equals_sequences_alone() -> None:
    torch.manual_seed(0)
    listener = PyramidalLSTM(4, 5, 2).eval()
    lengths = [13, 7, 4, 1]
    sequences = [torch.randn(n, 4) for n in lengths]
    batch = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)
    with torch.no_grad():
        together, reduced = listener(batch, torch.tensor(lengths))
        assert reduced.tolist() == [4, 2, 1, 1]
        for i, sequence in enumerate(sequences):
            alone, _ = listener(sequence[None], torch.tensor([len(sequence)]))
            assert alone.shape[1] == reduced[i]
            torch.testing.assert_close(together[i, : reduced[i]], alone[0], atol=1e-5, rtol=1e-4)

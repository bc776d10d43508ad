import pytest
import torch

from seqlab.data.batching import BPTTStream, bucket_batches, pad_batch
from seqlab.errors import DataError


def test_pad_batch_ids_lengths_and_mask():
    padded = pad_batch([[5, 6, 7], [8], [9, 10]], pad_index=0)
    assert padded.ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert padded.lengths.tolist() == [3, 1, 2]
    assert padded.ids.dtype == torch.long and padded.mask.dtype == torch.bool
    expected_mask = torch.arange(3)[None, :] < padded.lengths[:, None]
    assert torch.equal(padded.mask, expected_mask)
    assert torch.all(padded.ids[~padded.mask] == 0)


def test_pad_batch_max_len_truncates():
    padded = pad_batch([[1, 2, 3, 4], [5]], pad_index=9, max_len=2)
    assert padded.ids.tolist() == [[1, 2], [5, 9]]
    assert padded.lengths.tolist() == [2, 1]
    assert padded.to("cpu").mask.tolist() == [[True, True], [True, False]]


def test_pad_batch_empty_batch_is_an_error():
    with pytest.raises(DataError, match="empty batch"):
        pad_batch([], pad_index=0)


LENGTHS = [(i * 37) % 23 + 1 for i in range(1000)]


def test_bucket_batches_cover_every_index_once():
    batches = bucket_batches(LENGTHS, batch_size=16, shuffle=True, seed=3)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(LENGTHS)))
    assert all(1 <= len(batch) <= 16 for batch in batches)
    assert sum(len(batch) < 16 for batch in batches) <= 1  # only the last of a bucket


def test_bucket_batches_are_deterministic_and_sorted_longest_first():
    first = bucket_batches(LENGTHS, batch_size=16, shuffle=True, seed=3)
    assert first == bucket_batches(LENGTHS, batch_size=16, shuffle=True, seed=3)
    assert first != bucket_batches(LENGTHS, batch_size=16, shuffle=True, seed=4)
    for batch in first:
        lengths = [LENGTHS[i] for i in batch]
        assert lengths == sorted(lengths, reverse=True)


def test_bucketing_reduces_padding():
    def padding(batches):
        return sum(
            max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in batches
        )

    bucketed = bucket_batches(LENGTHS, batch_size=16, shuffle=True, seed=0)
    plain = [list(range(i, min(i + 16, 1000))) for i in range(0, 1000, 16)]
    assert padding(bucketed) < padding(plain) / 5


def test_bucket_batches_without_shuffle_is_seed_independent():
    assert bucket_batches(LENGTHS, 8, shuffle=False, seed=0) == bucket_batches(
        LENGTHS, 8, shuffle=False, seed=1
    )


def test_bptt_stream_every_token_is_a_target_once_in_order():
    ids = torch.arange(103)
    stream = BPTTStream(ids, batch_size=4, bptt=7)
    assert stream.data.shape == (4, 25)  # 103 // 4 = 25 tokens per row, 3 dropped
    assert stream.data[1].tolist() == list(range(25, 50))  # rows are contiguous slices
    windows = list(stream)
    assert len(windows) == len(stream) == 4  # 24 targets per row: 7 + 7 + 7 + 3
    inputs = torch.cat([x for x, _ in windows], dim=1)
    targets = torch.cat([y for _, y in windows], dim=1)
    assert torch.equal(inputs, stream.data[:, :-1])
    assert torch.equal(targets, stream.data[:, 1:])
    assert stream.num_tokens == targets.numel() == 96
    assert all(x.shape == y.shape and x.is_contiguous() for x, y in windows)


def test_variable_bptt_is_seeded_per_epoch_and_covers_the_stream():
    stream = BPTTStream(torch.arange(20_000), batch_size=2, bptt=35, variable_bptt=True, seed=1)
    lengths = stream.window_lengths()
    assert sum(lengths) == stream.data.size(1) - 1
    assert min(lengths[:-1]) >= 5
    assert any(length < 25 for length in lengths)  # some windows drew bptt / 2
    assert 30 < sum(lengths) / len(lengths) < 36
    assert lengths == stream.window_lengths()
    targets = torch.cat([y for _, y in stream], dim=1)
    assert torch.equal(targets, stream.data[:, 1:])
    stream.set_epoch(1)
    assert stream.window_lengths() != lengths


def test_bptt_longer_than_corpus_is_a_data_error():
    with pytest.raises(DataError, match="bptt=50 is longer than the corpus"):
        BPTTStream(torch.arange(100), batch_size=4, bptt=50)
    with pytest.raises(DataError, match="too short"):
        BPTTStream(torch.arange(5), batch_size=4, bptt=1)
    with pytest.raises(DataError, match="1-D long tensor"):
        BPTTStream(torch.zeros(2, 50, dtype=torch.long), batch_size=2, bptt=5)

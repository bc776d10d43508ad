"""Batching: padding with masks and lengths, length bucketing, and BPTT streams for LMs.

Shapes: B batch, T time (longest sequence in the batch), N tokens per stream row.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch

from seqlab.errors import ConfigError, DataError


class Padded(NamedTuple):
    """A padded batch of index sequences."""

    ids: torch.Tensor  # (B, T) long, filled with pad_index after each sequence's end
    lengths: torch.Tensor  # (B,) long, true length of each sequence
    mask: torch.Tensor  # (B, T) bool, True at real tokens, False at padding

    def to(self, device: torch.device | str) -> Padded:
        """The same batch on ``device``."""
        return Padded(self.ids.to(device), self.lengths.to(device), self.mask.to(device))


def pad_batch(seqs: Sequence[Sequence[int]], pad_index: int, max_len: int | None = None) -> Padded:
    """Pad ``seqs`` to the longest one (after cutting each to ``max_len`` if given).

    Returns ``Padded(ids (B, T), lengths (B,), mask (B, T))`` with
    ``mask[b, t] == (t < lengths[b])``.
    """
    if not seqs:
        raise DataError("cannot pad an empty batch")
    if max_len is not None and max_len < 1:
        raise ConfigError(f"max_len must be at least 1, got {max_len}")
    rows = [list(seq[:max_len]) for seq in seqs]
    longest = max(len(row) for row in rows)
    ids = torch.tensor(
        [row + [pad_index] * (longest - len(row)) for row in rows], dtype=torch.long
    ).view(len(rows), longest)  # (B, T), also when every sequence is empty
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)  # (B,)
    mask = torch.arange(longest)[None, :] < lengths[:, None]  # (B, T)
    return Padded(ids, lengths, mask)


BUCKET_SIZE_MULTIPLIER = 50
"""Batches per length bucket in ``bucket_batches`` by default."""


def bucket_batches(
    lengths: Sequence[int],
    batch_size: int,
    shuffle: bool,
    seed: int,
    bucket_size_multiplier: int = BUCKET_SIZE_MULTIPLIER,
) -> list[list[int]]:
    """Group indices ``0..len(lengths)-1`` into batches of similar length.

    The (optionally shuffled) indices are cut into buckets of
    ``batch_size * bucket_size_multiplier``; each bucket is sorted by length, longest first,
    and cut into batches; with ``shuffle`` the batch order is shuffled too. Every index is
    in exactly one batch, and the result depends only on the arguments (``seed``).
    """
    if batch_size < 1 or bucket_size_multiplier < 1:
        raise ConfigError(
            f"batch_size and bucket_size_multiplier must be at least 1, got {batch_size} "
            f"and {bucket_size_multiplier}"
        )
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    if shuffle:
        rng.shuffle(order)
    bucket = batch_size * bucket_size_multiplier
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start : start + bucket], key=lambda i: -lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    if shuffle:
        rng.shuffle(batches)
    return batches


class BPTTStream:
    """Truncated-BPTT windows over one long token stream, batch-first.

    As in pytorch/examples' ``batchify``/``get_batch``: the stream is cut into
    ``batch_size`` contiguous rows, ``data`` of shape (B, N) (the last ``len % B`` tokens
    are dropped), and iteration yields ``(inputs, targets)`` windows of shape (B, t) with
    ``targets[:, j] == data[:, i + j + 1]`` for ``inputs[:, j] == data[:, i + j]``. Every
    token except each row's first is a target exactly once per epoch, in order.

    ``variable_bptt`` follows AWD-LSTM: each window's base length is ``bptt`` with
    probability 0.95 and ``bptt / 2`` otherwise, jittered by a normal with std 5 and at
    least 5 long (scale the learning rate by ``t / bptt`` as AWD-LSTM does). The lengths
    depend only on ``seed`` and the epoch set with ``set_epoch``.
    """

    def __init__(
        self,
        ids: torch.Tensor,
        batch_size: int,
        bptt: int,
        variable_bptt: bool = False,
        seed: int = 0,
    ) -> None:
        if ids.dim() != 1 or ids.dtype != torch.long:
            raise DataError(f"BPTTStream needs a 1-D long tensor, got {ids.dtype} {ids.shape}")
        if batch_size < 1 or bptt < 1:
            raise ConfigError(f"batch_size and bptt must be at least 1, got {batch_size}, {bptt}")
        row_len = ids.numel() // batch_size
        if row_len < 2:
            raise DataError(
                f"a corpus of {ids.numel()} tokens is too short for batch_size={batch_size}"
            )
        if bptt > row_len - 1:
            raise DataError(
                f"bptt={bptt} is longer than the corpus: with batch_size={batch_size} each row "
                f"has {row_len} tokens, so windows of at most {row_len - 1}; "
                "lower bptt or batch_size"
            )
        self.data = ids[: row_len * batch_size].view(batch_size, row_len)  # (B, N)
        self.batch_size = batch_size
        self.bptt = bptt
        self.variable_bptt = variable_bptt
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose window lengths ``variable_bptt`` draws."""
        self.epoch = epoch

    @property
    def num_tokens(self) -> int:
        """Number of target tokens per epoch: B * (N - 1)."""
        return self.batch_size * (self.data.size(1) - 1)

    def window_lengths(self) -> list[int]:
        """The lengths ``t`` of this epoch's windows, in order; they sum to N - 1."""
        total = self.data.size(1) - 1
        rng = random.Random(f"{self.seed}:{self.epoch}")
        lengths: list[int] = []
        start = 0
        while start < total:
            length = self.bptt
            if self.variable_bptt:
                base = self.bptt if rng.random() < 0.95 else self.bptt / 2
                length = max(5, int(rng.gauss(base, 5)))
            lengths.append(min(length, total - start))
            start += lengths[-1]
        return lengths

    def __len__(self) -> int:
        return len(self.window_lengths())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs (B, t), targets (B, t))``, both contiguous long tensors."""
        start = 0
        for length in self.window_lengths():
            inputs = self.data[:, start : start + length]
            targets = self.data[:, start + 1 : start + 1 + length]
            yield inputs.contiguous(), targets.contiguous()
            start += length

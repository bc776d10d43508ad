"""Vocabulary: token <-> index, with specials, frequency cut-offs and a stable order.

The order is a pure function of the counts: specials first (in the order given), then
tokens by count descending, ties broken by the token string ascending. It never depends on
input order or on ``PYTHONHASHSEED``, so the same corpus gives the same indices on every
run and machine.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from seqlab.errors import DataError
from seqlab.io import atomic_open

PAD = "<pad>"
UNK = "<unk>"
BOS = "<bos>"
EOS = "<eos>"

_FORMAT = "seqlab.vocab/1"


class Vocab:
    """A fixed vocabulary: ``itos`` (index -> token) and ``stoi`` (token -> index).

    Build one with ``Vocab.build(sequences)`` or ``Vocab.from_counter(counts)``; the
    constructor takes a finished ``itos`` list (as ``load`` does).
    """

    def __init__(
        self, itos: Sequence[str], specials: Sequence[str], counts: Mapping[str, int]
    ) -> None:
        self.itos: list[str] = list(itos)
        self.specials: tuple[str, ...] = tuple(specials)
        self.stoi: dict[str, int] = {token: index for index, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            duplicates = sorted(token for token, n in Counter(self.itos).items() if n > 1)
            raise DataError(f"vocabulary lists tokens more than once: {duplicates[:10]}")
        if self.itos[: len(self.specials)] != list(self.specials):
            raise DataError(f"vocabulary must start with its specials {list(self.specials)}")
        self.counts: dict[str, int] = {token: counts.get(token, 0) for token in self.itos}

    @classmethod
    def from_counter(
        cls,
        counts: Mapping[str, int],
        specials: Sequence[str] = (PAD, UNK),
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """Keep tokens seen at least ``min_count`` times, at most ``max_size`` entries.

        ``max_size`` counts the specials too, so it is the final ``len(vocab)`` (the
        embedding size); the least frequent tokens are dropped first.
        """
        if len(set(specials)) != len(specials):
            raise DataError(f"specials must be distinct, got {list(specials)}")
        if max_size is not None and max_size <= len(specials):
            raise DataError(f"max_size={max_size} leaves no room beyond specials {specials}")
        special_set = set(specials)
        kept = [t for t, n in counts.items() if n >= min_count and t not in special_set]
        kept.sort(key=lambda token: (-counts[token], token))
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        if not kept:
            raise DataError(
                f"min_count={min_count} left no words in the vocabulary "
                f"({len(counts)} distinct tokens seen); lower min_count or check the corpus"
            )
        return cls([*specials, *kept], specials, counts)

    @classmethod
    def build(
        cls,
        sequences: Iterable[Iterable[str]],
        specials: Sequence[str] = (PAD, UNK),
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """Count the tokens of ``sequences`` (e.g. tokenized sentences) and build a vocab."""
        counts: Counter[str] = Counter()
        for tokens in sequences:
            counts.update(tokens)
        return cls.from_counter(counts, specials, min_count, max_size)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return (self.itos, self.specials, self.counts) == (
            other.itos,
            other.specials,
            other.counts,
        )

    __hash__ = None  # type: ignore[assignment]  # equal by content, so unhashable

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={list(self.specials)})"

    @property
    def pad_index(self) -> int:
        """Index of ``<pad>``; DataError if this vocab has none."""
        return self._special_index(PAD)

    @property
    def unk_index(self) -> int:
        """Index of ``<unk>``; DataError if this vocab has none."""
        return self._special_index(UNK)

    def _special_index(self, token: str) -> int:
        if token not in self.stoi:
            raise DataError(f"this vocabulary has no {token} token (specials: {self.specials})")
        return self.stoi[token]

    def index(self, token: str) -> int:
        """Index of ``token``; unknown tokens map to ``<unk>`` if the vocab has one."""
        index = self.stoi.get(token)
        if index is not None:
            return index
        if UNK in self.stoi:
            return self.stoi[UNK]
        raise DataError(f"token {token!r} is not in the vocabulary and there is no {UNK}")

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to indices (see ``index`` for unknown tokens)."""
        return [self.index(token) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map indices back to tokens; an index out of range is a DataError."""
        tokens = []
        for i in ids:
            if not 0 <= int(i) < len(self.itos):
                raise DataError(f"index {int(i)} is out of range for a vocabulary of {len(self)}")
            tokens.append(self.itos[int(i)])
        return tokens

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocab as JSON, atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        payload = {
            "format": _FORMAT,
            "specials": list(self.specials),
            "itos": self.itos,
            "counts": [self.counts[token] for token in self.itos],
        }
        with atomic_open(path) as file:
            json.dump(payload, file, ensure_ascii=False, indent=0)
            file.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a vocab written by ``save``; a missing or malformed file is a DataError."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: no such vocabulary file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: not a readable vocabulary file ({error})") from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise DataError(f"{path}: not a seqlab vocabulary (expected format {_FORMAT})")
        try:
            itos, counts, specials = payload["itos"], payload["counts"], payload["specials"]
        except KeyError as error:
            raise DataError(f"{path}: vocabulary file has no {error} entry") from None
        if len(itos) != len(counts):
            raise DataError(f"{path}: {len(itos)} tokens but {len(counts)} counts")
        return cls(itos, specials, dict(zip(itos, counts, strict=True)))

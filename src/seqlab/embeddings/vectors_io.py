"""Word vectors and the word2vec file formats (text and binary), as word2vec.c writes them.

Both formats start with a header line ``"<count> <dim>\\n"``. In the text format every
following line is ``word v1 ... v_dim``; in the binary format every entry is the word in
UTF-8, one space, ``dim`` little-endian float32 values and (optionally) a newline.
Text files without a header (GloVe style) are read too. Malformed files raise
:class:`~seqlab.errors.DataError` naming the file and the line (text) or entry and byte
offset (binary).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqlab.errors import DataError, where
from seqlab.io import atomic_open

_SNIFF_BYTES = 4096


class WordVectors:
    """A vocabulary of ``V`` words with one ``D``-dimensional vector each.

    Words keep the order they were given in (word2vec files are sorted by frequency, so
    ``words[:n]`` are the ``n`` most frequent). ``vectors`` is ``(V, D)`` float32.
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"need a ({len(words)}, D) matrix, got shape {vectors.shape}")
        self.words: list[str] = list(words)
        self.vectors: np.ndarray = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index: dict[str, int] = {}
        for i, word in enumerate(self.words):
            self.index.setdefault(word, i)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        """The ``(D,)`` vector of ``word`` (KeyError if absent)."""
        return self.vectors[self.index[word]]

    def unit_vectors(self, limit: int | None = None) -> np.ndarray:
        """The first ``limit`` (default all) vectors scaled to unit length: ``(V', D)``."""
        rows = self.vectors[:limit]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, np.finfo(np.float32).tiny)


# ----------------------------------------------------------------------------- saving


_ASCII_SPACE = frozenset(" \t\n\v\f\r")
"""What separates words in the word2vec formats (as in the C tool and ``bytes.split``);
other Unicode spaces, such as the no-break space in SST's "2\xa01/2", stay inside a word."""


def save_word2vec(wv: WordVectors, path: str | Path, *, binary: bool = False) -> Path:
    """Write ``wv`` in word2vec text or binary format (atomically: temp file + rename)."""
    path = Path(path)
    for line, word in enumerate(wv.words, start=2):
        if not word or any(ch in _ASCII_SPACE for ch in word):
            raise DataError(f"{where(path, line)}: word {word!r} is empty or has whitespace")
    with atomic_open(path, "wb") as out:
        out.write(f"{len(wv)} {wv.dim}\n".encode())
        if binary:
            little = wv.vectors.astype("<f4", copy=False)
            for word, row in zip(wv.words, little, strict=True):
                out.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
        else:
            row_format = " ".join(["%.9g"] * wv.dim)  # 9 digits: float32 round-trips exactly
            for word, row in zip(wv.words, wv.vectors.tolist(), strict=True):
                out.write(f"{word} {row_format % tuple(row)}\n".encode())
    return path


# ----------------------------------------------------------------------------- loading


def load_word2vec(
    path: str | Path, *, binary: bool | None = None, limit: int | None = None
) -> WordVectors:
    """Read a word2vec text or binary file (``binary=None``: detect from the content).

    ``limit`` reads only the first ``limit`` vectors (the most frequent words). Duplicate
    words keep their first vector.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: vectors file not found")
    if binary is None:
        binary = is_binary(path)
    return _load_binary(path, limit) if binary else _load_text(path, limit)


def is_binary(path: Path) -> bool:
    """True if the bytes after the header line are not UTF-8 text (float32 data)."""
    with open(path, "rb") as f:
        f.readline()
        sample = f.read(_SNIFF_BYTES)
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start < len(sample) - 4  # a multi-byte character cut by the sample is fine
    return False


def _parse_header(path: Path, raw: bytes) -> tuple[int, int] | None:
    """``(count, dim)`` from a header line, or None if the line is a vector (no header)."""
    parts = raw.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        count, dim = int(parts[0]), int(parts[1])
        if dim < 1:
            raise DataError(f"{where(path, 1)}: header says dimension {dim}; need at least 1")
        return count, dim
    if len(parts) <= 2:
        raise DataError(
            f"{where(path, 1)}: expected a header '<count> <dim>' or a vector line, "
            f"got {raw[:80]!r}"
        )
    return None


def _decode(path: Path, line: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where(path, line)}: not valid UTF-8 ({err.reason})") from err


def _parse_vector_line(path: Path, line: int, text: str, dim: int | None) -> tuple[str, np.ndarray]:
    parts = text.rstrip().split(" ")
    word, values = parts[0], parts[1:]
    if dim is not None and len(values) != dim:
        raise DataError(
            f"{where(path, line)}: expected a word and {dim} values, found {len(values)} values"
        )
    try:
        return word, np.array(values, dtype=np.float32)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        raise DataError(f"{where(path, line)}: bad value {bad!r} for word {word!r}") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_text(path: Path, limit: int | None) -> WordVectors:
    words: list[str] = []
    rows: list[np.ndarray] = []
    with open(path, "rb") as f:
        first = f.readline()
        header = _parse_header(path, first)
        count: int | None = None
        if header is None:  # GloVe style: the first line is already a vector
            word, row = _parse_vector_line(path, 1, _decode(path, 1, first), None)
            dim = len(row)
            words.append(word)
            rows.append(row)
        else:
            count, dim = header
        wanted = count if limit is None else min(limit, count if count is not None else limit)
        line = 1
        for line, raw in enumerate(f, start=2):
            if wanted is not None and len(words) >= wanted:
                break
            text = _decode(path, line, raw)
            if text.strip():
                word, row = _parse_vector_line(path, line, text, dim)
                words.append(word)
                rows.append(row)
        else:
            line += 1
    if wanted is not None and len(words) < wanted:
        raise DataError(
            f"{where(path, line)}: file ends after {len(words)} vectors but the header says {count}"
        )
    if not words:
        raise DataError(f"{path}: no vectors in the file")
    return WordVectors(words, np.stack(rows))


def _load_binary(path: Path, limit: int | None) -> WordVectors:
    with open(path, "rb") as f:
        header = _parse_header(path, f.readline())
        if header is None:
            raise DataError(
                f"{where(path, 1)}: a binary word2vec file needs a '<count> <dim>' header"
            )
        count, dim = header
        wanted = count if limit is None else min(limit, count)
        start, size = f.tell(), os.fstat(f.fileno()).st_size
        if wanted > 0 and size <= start:
            raise DataError(f"{path}: truncated: the header says {count} vectors, none follow")
        vectors = np.empty((wanted, dim), dtype=np.float32)
        words: list[str] = []
        if wanted == 0:
            return WordVectors(words, vectors)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            pos = start
            for i in range(wanted):
                while pos < size and data[pos] in b"\n\r":
                    pos += 1
                word, pos = _read_binary_word(path, data, pos, i, count)
                end = pos + 4 * dim
                if end > size:
                    raise DataError(
                        f"{path}: truncated at entry {i + 1} of {count} ({word!r}) at byte {pos}: "
                        f"needs {4 * dim} bytes for {dim} float32 values, {size - pos} left"
                    )
                vectors[i] = np.frombuffer(data[pos:end], dtype="<f4")
                words.append(word)
                pos = end
    return WordVectors(words, vectors)


def _read_binary_word(path: Path, data: mmap.mmap, pos: int, i: int, count: int) -> tuple[str, int]:
    """The word of entry ``i`` starting at byte ``pos`` and the offset of its vector."""
    space = data.find(b" ", pos)
    if space < 0:
        raise DataError(
            f"{path}: truncated at entry {i + 1} of {count} at byte {pos}: no word follows"
        )
    try:
        word = data[pos:space].decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: entry {i + 1} of {count} at byte {pos}: the word is not valid UTF-8; "
            "is the header's dimension right, and is this really a binary file?"
        ) from None
    return word, space + 1

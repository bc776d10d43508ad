from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqlab.embeddings.vectors_io import WordVectors, is_binary, load_word2vec, save_word2vec
from seqlab.errors import DataError

gensim_models = pytest.importorskip("gensim.models")


@pytest.fixture
def wv() -> WordVectors:
    rng = np.random.default_rng(0)
    words = ["the", "king", "queen", "naïve", "<unk>", "N"]
    return WordVectors(words, rng.normal(size=(len(words), 7)).astype(np.float32))


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_is_exact(tmp_path: Path, wv: WordVectors, binary: bool) -> None:
    path = save_word2vec(wv, tmp_path / "v", binary=binary)
    assert is_binary(path) == binary
    loaded = load_word2vec(path)
    assert loaded.words == wv.words
    assert np.array_equal(loaded.vectors, wv.vectors)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_what_we_write(tmp_path: Path, wv: WordVectors, binary: bool) -> None:
    path = save_word2vec(wv, tmp_path / "v", binary=binary)
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == wv.words
    assert np.array_equal(kv.vectors, wv.vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_we_read_what_gensim_writes(tmp_path: Path, wv: WordVectors, binary: bool) -> None:
    kv = gensim_models.KeyedVectors(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    path = tmp_path / "gensim.vec"
    kv.save_word2vec_format(str(path), binary=binary)
    loaded = load_word2vec(path)
    assert loaded.words == wv.words
    assert np.array_equal(loaded.vectors, wv.vectors)


def test_limit_reads_the_first_vectors(tmp_path: Path, wv: WordVectors) -> None:
    for binary in (False, True):
        path = save_word2vec(wv, tmp_path / f"v{binary}", binary=binary)
        loaded = load_word2vec(path, limit=2)
        assert loaded.words == ["the", "king"]
        assert np.array_equal(loaded.vectors, wv.vectors[:2])


def test_text_without_header_is_read_like_glove(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("a 1 2 3\nb 4 5 6\n", encoding="utf-8")
    loaded = load_word2vec(path)
    assert loaded.words == ["a", "b"]
    assert np.array_equal(loaded.vectors, [[1, 2, 3], [4, 5, 6]])


def test_wrong_dimension_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("3 2\na 1 2\nb 1 2 3\nc 1 2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"v\.txt:3: expected a word and 2 values, found 3"):
        load_word2vec(path)


def test_bad_float_names_the_line_and_value(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("2 2\na 1 2\nb 1 x2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"v\.txt:3: bad value 'x2' for word 'b'"):
        load_word2vec(path)


def test_text_shorter_than_its_header(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("3 2\na 1 2\nb 1 2\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"v\.txt:4: file ends after 2 vectors but the header says 3"
    ):
        load_word2vec(path)


def test_truncated_binary_names_entry_and_byte(tmp_path: Path, wv: WordVectors) -> None:
    path = save_word2vec(wv, tmp_path / "v.bin", binary=True)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"truncated at entry 6 of 6 \('N'\) at byte \d+: needs 28"):
        load_word2vec(path, binary=True)
    header = data.index(b"\n") + 1
    path.write_bytes(data[:header])
    with pytest.raises(DataError, match="none follow"):
        load_word2vec(path, binary=True)


def test_binary_with_wrong_header_dimension(tmp_path: Path, wv: WordVectors) -> None:
    path = save_word2vec(wv, tmp_path / "v.bin", binary=True)
    path.write_bytes(path.read_bytes().replace(b"6 7\n", b"6 9\n", 1))
    with pytest.raises(DataError, match=r"v\.bin: (truncated|entry \d+ of 6 at byte \d+)"):
        load_word2vec(path, binary=True)


def test_missing_empty_and_bad_header(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_word2vec(tmp_path / "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.txt:1: expected a header"):
        load_word2vec(empty)
    zero_dim = tmp_path / "zero.txt"
    zero_dim.write_text("2 0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"zero\.txt:1: header says dimension 0"):
        load_word2vec(zero_dim)


def test_saving_a_word_with_whitespace_fails(tmp_path: Path) -> None:
    wv = WordVectors(["new york"], np.zeros((1, 2), np.float32))
    with pytest.raises(DataError, match="whitespace"):
        save_word2vec(wv, tmp_path / "v.txt")
    assert not (tmp_path / "v.txt").exists()


@pytest.mark.parametrize("binary", [False, True])
def test_unicode_space_inside_a_word_round_trips(tmp_path: Path, binary: bool) -> None:
    """SST has "2\xa01\\/2": only ASCII whitespace separates words in both formats."""
    words = ["2\xa01\\/2", "the"]
    wv = WordVectors(words, np.arange(4, dtype=np.float32).reshape(2, 2))
    path = save_word2vec(wv, tmp_path / "v", binary=binary)
    assert load_word2vec(path).words == words
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == words


def test_word_vectors_lookup_and_unit_vectors() -> None:
    wv = WordVectors(["a", "b", "a"], np.array([[3, 4], [0, 2], [1, 1]], np.float32))
    assert wv.index == {"a": 0, "b": 1}  # duplicates keep the first
    assert np.array_equal(wv["b"], [0, 2])
    assert np.allclose(wv.unit_vectors(2), np.array([[0.6, 0.8], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(2, D\)"):
        WordVectors(["a", "b"], np.zeros((3, 2)))

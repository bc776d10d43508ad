from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqlab.embeddings.w2v_vocab import (
    build_vocab,
    huffman_tree,
    iter_chunks,
    noise_table,
    subsample_thresholds,
)
from seqlab.embeddings.word2vec import Word2Vec, Word2VecConfig, train_word2vec
from seqlab.errors import ConfigError, DataError


def topic_corpus(path: Path, sentences: int = 1500, seed: int = 0) -> Path:
    """Sentences drawn from one of two disjoint 8-word topics (plus shared filler)."""
    rng = np.random.default_rng(seed)
    topics = [[f"{t}{i}" for i in range(8)] for t in ("fruit", "metal")]
    lines = []
    for _ in range(sentences):
        topic = topics[rng.integers(2)]
        words = [topic[i] for i in rng.integers(0, 8, size=10)]
        words.insert(int(rng.integers(0, 10)), "the")
        lines.append(" ".join(words))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_config(**changes: object) -> Word2VecConfig:
    settings: dict[str, object] = dict(
        dim=16, window=3, min_count=1, epochs=3, workers=1, alpha=0.05, sample=0.0
    )
    settings.update(changes)
    return Word2VecConfig(**settings)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- corpus + vocab


def test_chunks_end_at_line_breaks_or_whitespace(tmp_path: Path) -> None:
    first = tmp_path / "a.txt"
    first.write_bytes(b"alpha beta\ngamma delta epsilon zeta\n")
    second = tmp_path / "b.txt"
    second.write_bytes(b"one two three")  # no final newline
    chunks = list(iter_chunks([first, second], size=16))
    assert b"".join(chunks) == first.read_bytes() + second.read_bytes()
    assert chunks[0] == b"alpha beta\n"
    assert all(c.endswith((b"\n", b" ")) for c in chunks[:-1])
    assert chunks[-1].endswith(b"three")


def test_encode_tokenizes_lines_and_cuts_long_sentences(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("b a c a\nb a d\nc naïve\n", encoding="utf-8")
    model = Word2Vec(tiny_config(max_sentence_length=3), build_vocab(corpus, min_count=1))
    ids, ends = model.encode("a  b\tzz naïve\r\n\n\n d d d d d\nc".encode())
    assert model.vocab.words == ("a", "b", "c", "d", "naïve")
    assert ids.tolist() == [0, 1, -1, 4, 3, 3, 3, 3, 3, 2]
    assert ends.tolist() == [3, 4, 7, 9, 10]  # lines of 4 and 5 tokens are cut after 3


def test_build_vocab_counts_sorts_and_cuts(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("b a c a\nb a d\nc e\n", encoding="utf-8")
    vocab = build_vocab(corpus, min_count=2)
    assert vocab.words == ("a", "b", "c")  # by count; ties by first occurrence
    assert vocab.counts.tolist() == [3, 2, 2]
    assert (vocab.raw_words, vocab.raw_bytes) == (9, 18)
    assert build_vocab(corpus, min_count=1, max_vocab=2).words == ("a", "b")


def test_empty_corpus_and_min_count_leaving_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.txt: the corpus is empty"):
        build_vocab(empty)
    rare = tmp_path / "rare.txt"
    rare.write_text("a b a\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"rare\.txt: no word occurs min_count=5 times.*'a'"):
        build_vocab(rare, min_count=5)
    with pytest.raises(DataError, match="not found"):
        build_vocab(tmp_path / "absent.txt")


def test_subsampling_keep_probability() -> None:
    counts = np.array([1000, 100, 1], dtype=np.int64)
    keep = subsample_thresholds(counts, 1e-2) / 2**32
    t = 1e-2 * counts.sum()
    expected = np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1.0)
    assert np.allclose(keep, expected)
    assert keep[0] < keep[1] and keep[2] == 1.0
    assert (subsample_thresholds(counts, 0.0) == 2**32).all()


def test_noise_alias_table_follows_unigram_to_the_075() -> None:
    counts = np.array([81, 16, 16, 5, 1], dtype=np.int64)
    table = noise_table(counts)
    keep = table[:, 0] / 2**32  # row i: itself with this probability, else its alias
    probs = keep / len(counts)
    np.add.at(probs, table[:, 1], (1 - keep) / len(counts))
    weights = counts**0.75
    assert np.allclose(probs, weights / weights.sum(), atol=1e-9)


def test_huffman_codes_are_a_complete_prefix_code() -> None:
    counts = np.array([50, 20, 10, 10, 5, 3, 1, 1], dtype=np.int64)
    tree = huffman_tree(counts)
    codes = ["".join(map(str, tree.codes[w, : tree.lengths[w]])) for w in range(len(counts))]
    assert len(set(codes)) == len(codes)
    assert not any(a != b and b.startswith(a) for a in codes for b in codes)
    assert sum(2.0 ** -len(c) for c in codes) == pytest.approx(1.0)  # Kraft: full tree
    assert list(tree.lengths) == sorted(tree.lengths)  # frequent words get short codes
    assert all(tree.points[w, 0] == len(counts) - 2 for w in range(len(counts)))  # the root
    assert tree.points.max() <= len(counts) - 2


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="negative > 0 or hs"):
        Word2VecConfig(negative=0, hs=False)
    with pytest.raises(ConfigError, match="min_alpha"):
        Word2VecConfig(alpha=0.01, min_alpha=0.1)


# ----------------------------------------------------------------------------- training


def test_learning_rate_decays_linearly(tmp_path: Path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt", sentences=200)
    model = Word2Vec(tiny_config(batch_words=100, epochs=2), build_vocab(corpus, 1))
    alphas = [float(job.alpha) for job in model._jobs(corpus)]
    assert alphas[0] == pytest.approx(0.05)
    assert np.all(np.diff(alphas) < 0)
    assert alphas[-1] == pytest.approx(0.0001, abs=0.05 * 100 / 4400 * 1.1)


@pytest.mark.parametrize(
    ("architecture", "negative", "hs"),
    [("skipgram", 5, False), ("skipgram", 0, True), ("cbow", 5, False), ("cbow", 0, True)],
)
def test_training_puts_topic_words_together(
    tmp_path: Path, architecture: str, negative: int, hs: bool
) -> None:
    corpus = topic_corpus(tmp_path / "c.txt")
    config = tiny_config(architecture=architecture, negative=negative, hs=hs)
    model, stats = train_word2vec(corpus, config)
    assert stats.raw_words == 3 * 1500 * 11
    assert stats.trained_words == stats.raw_words  # min_count 1, no subsampling
    unit = model.wv.unit_vectors()
    index = model.wv.index
    fruit = [index[f"fruit{i}"] for i in range(8)]
    metal = [index[f"metal{i}"] for i in range(8)]
    within = (unit[fruit] @ unit[fruit].T)[np.triu_indices(8, 1)].mean()
    across = (unit[fruit] @ unit[metal].T).mean()
    assert within > across + 0.3, (within, across)


def test_single_worker_training_is_deterministic_by_seed(tmp_path: Path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt", sentences=300)
    config = tiny_config(sample=1e-2, batch_words=500, hs=True)
    first, _ = train_word2vec(corpus, config)
    second, _ = train_word2vec(corpus, config)
    other, _ = train_word2vec(corpus, tiny_config(sample=1e-2, batch_words=500, hs=True, seed=2))
    assert np.array_equal(first.syn0, second.syn0)
    assert np.array_equal(first.syn1, second.syn1)
    assert not np.array_equal(first.syn0, other.syn0)


def test_hogwild_workers_and_max_steps(tmp_path: Path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt", sentences=600)
    model, stats = train_word2vec(corpus, tiny_config(workers=3, batch_words=500))
    assert stats.raw_words == 3 * 600 * 11
    assert 3 * 13 <= stats.jobs <= 3 * 14  # jobs of about 500 words
    assert np.isfinite(model.syn0).all()
    _, stopped = train_word2vec(corpus, tiny_config(batch_words=500, max_steps=4))
    assert stopped.jobs == 4 and 4 * 450 < stopped.raw_words < 4 * 550

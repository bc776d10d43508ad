from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from seqlab.embeddings.evaluate import (
    analogy,
    evaluate_analogies,
    evaluate_similarity,
    nearest_neighbours,
)
from seqlab.embeddings.vectors_io import WordVectors
from seqlab.errors import DataError

gensim_models = pytest.importorskip("gensim.models")


@pytest.fixture
def royal() -> WordVectors:
    """Axes: royalty, gender (+ female), fruitiness. king - man + woman = queen exactly."""
    vectors = {
        "man": [0.0, -1.0, 0.0, 0.3],
        "woman": [0.0, 1.0, 0.0, 0.3],
        "king": [1.0, -1.0, 0.0, 0.3],
        "queen": [1.0, 1.0, 0.0, 0.3],
        "prince": [0.8, -1.2, 0.1, 0.3],
        "apple": [0.0, 0.0, 1.0, 0.0],
        "pear": [0.1, 0.0, 0.9, 0.1],
    }
    return WordVectors(list(vectors), np.array(list(vectors.values()), np.float32))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_analogy_query_on_hand_made_vectors(royal: WordVectors) -> None:
    answers = analogy(royal, "king", "man", "woman", k=2)
    assert answers[0][0] == "queen"
    unit = royal.unit_vectors()
    query = unit[royal.index["king"]] - unit[royal.index["man"]] + unit[royal.index["woman"]]
    cosine = query @ unit[royal.index["queen"]] / np.linalg.norm(query)
    assert answers[0][1] == pytest.approx(cosine)
    assert {w for w, _ in answers}.isdisjoint({"king", "man", "woman"})
    assert analogy(royal, "King", "man", "woman", method="mul")[0][0] == "queen"  # lowercased
    with pytest.raises(DataError, match="'duke' is not in the vocabulary of 7 words"):
        analogy(royal, "duke", "man", "woman")


def test_nearest_neighbours(royal: WordVectors) -> None:
    neighbours = nearest_neighbours(royal, "apple", k=3)
    assert neighbours[0][0] == "pear"
    assert [w for w, _ in neighbours] != ["apple"] and len(neighbours) == 3
    assert neighbours[0][1] >= neighbours[1][1] >= neighbours[2][1]


def test_analogy_accuracy_sections_and_oov(tmp_path: Path, royal: WordVectors) -> None:
    questions = write(
        tmp_path / "q.txt",
        ": royal\nman king woman queen\nMan Woman King Queen\nman king woman duke\n"
        ": fruit\nman woman apple pear\n",
    )
    for method in ("add", "mul"):
        result = evaluate_analogies(royal, questions, method=method)
        royal_section, fruit = result.sections
        assert (royal_section.correct, royal_section.incorrect, royal_section.oov) == (2, 0, 1)
        assert (fruit.correct, fruit.incorrect) == (0, 1)
        assert result.accuracy == pytest.approx(2 / 3)
        assert result.oov == 1
    restricted = evaluate_analogies(royal, questions, restrict_vocab=4)  # queen in, prince out
    assert restricted.answered == 2 and restricted.oov == 2


def test_analogy_accuracy_matches_gensim(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)] + ["W3", "W5"]  # case variants of w3 and w5
    vectors = rng.normal(size=(len(words), 6)).astype(np.float32)
    lines = [": one"]
    for _ in range(300):
        a, b, c, d = rng.choice(45, size=4, replace=False)  # ids >= 40 are OOV words
        lines.append(" ".join(f"w{i}" for i in (a, b, c, d)))
        if len(lines) == 150:
            lines.append(": two")
    questions = write(tmp_path / "q.txt", "\n".join(lines) + "\n")
    kv = gensim_models.KeyedVectors(6)
    kv.add_vectors(words, vectors)
    wv = WordVectors(words, vectors)
    for restrict in (300_000, 30):
        gensim_score, gensim_sections = kv.evaluate_word_analogies(
            str(questions), restrict_vocab=restrict
        )
        ours = evaluate_analogies(wv, questions, restrict_vocab=restrict)
        assert ours.accuracy == pytest.approx(gensim_score)
        assert [s.correct for s in ours.sections] == [
            len(s["correct"]) for s in gensim_sections[:2]
        ]


@pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`:DeprecationWarning")
def test_cosmul_matches_gensim_most_similar_cosmul(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(30)]
    vectors = rng.normal(size=(30, 5)).astype(np.float32)
    kv = gensim_models.KeyedVectors(5)
    kv.add_vectors(words, vectors)
    wv = WordVectors(words, vectors)
    for a, b, c in rng.choice(30, size=(20, 3)):
        if len({a, b, c}) < 3:
            continue
        expected = kv.most_similar_cosmul(positive=[words[b], words[c]], negative=[words[a]])
        ours = analogy(wv, words[b], words[a], words[c], k=3, method="mul")
        assert [w for w, _ in ours] == [w for w, _ in expected[:3]]
        assert [s for _, s in ours] == pytest.approx([s for _, s in expected[:3]], rel=1e-4)


def test_similarity_spearman_with_oov_pairs(tmp_path: Path, royal: WordVectors) -> None:
    pairs = write(
        tmp_path / "ws.tsv",
        "# comment\n# word1\tword2\tscore\nking\tqueen\t8.5\napple\tpear\t9\n"
        "king\tapple\t1.0\nman\twoman\t6\nQueen\tduke\t7\n",
    )
    result = evaluate_similarity(royal, pairs)
    unit = royal.unit_vectors()
    idx = royal.index
    known = [("king", "queen"), ("apple", "pear"), ("king", "apple"), ("man", "woman")]
    model = [float(unit[idx[a]] @ unit[idx[b]]) for a, b in known]
    assert result.pairs == 4 and result.oov == 1
    assert result.spearman == pytest.approx(stats.spearmanr([8.5, 9, 1, 6], model).statistic)
    kv = gensim_models.KeyedVectors(4)
    kv.add_vectors(royal.words, royal.vectors)
    _, gensim_spearman, gensim_oov = kv.evaluate_word_pairs(str(pairs))
    assert result.spearman == pytest.approx(gensim_spearman.statistic)
    assert gensim_oov == pytest.approx(20.0)


def test_malformed_evaluation_files_name_the_line(tmp_path: Path, royal: WordVectors) -> None:
    bad_questions = write(tmp_path / "q.txt", ": s\nman king woman\n")
    with pytest.raises(DataError, match=r"q\.txt:2: expected 4 words, got 3"):
        evaluate_analogies(royal, bad_questions)
    no_section = write(tmp_path / "n.txt", "man king woman queen\n")
    with pytest.raises(DataError, match=r"n\.txt:1: question before any"):
        evaluate_analogies(royal, no_section)
    bad_pairs = write(tmp_path / "p.tsv", "king\tqueen\t8\nking\tman\tmany\n")
    with pytest.raises(DataError, match=r"p\.tsv:2: bad score 'many'"):
        evaluate_similarity(royal, bad_pairs)

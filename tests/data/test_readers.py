import gzip
import io
from collections import Counter
from pathlib import Path

import pytest

from seqlab.data.readers import (
    parse_tree,
    polarity_folds,
    read_babi,
    read_conllu,
    read_labelled_lines,
    read_lines,
    read_parallel,
    read_polarity,
    read_text,
    read_trees,
    write_conllu,
    write_trees,
)
from seqlab.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def gzipped(path: Path, tmp_path: Path) -> Path:
    out = tmp_path / (path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


# --------------------------------------------------------------------------- plain text


def test_read_lines_plain_gz_and_crlf(tmp_path: Path):
    src = FIXTURES / "src.txt"
    assert list(read_lines(src)) == ["ein Hund", "zwei Katzen", "drei V\u00f6gel"]
    assert list(read_lines(gzipped(src, tmp_path))) == list(read_lines(src))
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"a b\r\n\r\nc\r\n")
    assert list(read_lines(crlf)) == ["a b", "", "c"]


def test_non_utf8_line_is_named_with_a_hint():
    with pytest.raises(DataError, match=r"cp1252\.txt:3: not valid utf-8.*cp1252"):
        list(read_lines(FIXTURES / "cp1252.txt"))
    assert (
        list(read_lines(FIXTURES / "cp1252.txt", encoding="cp1252"))[2]
        == "the na\u00efve caf\u00e9"
    )


def test_binary_and_missing_files_are_data_errors(tmp_path: Path):
    with pytest.raises(DataError, match=r"binary\.bin:1: NUL byte"):
        list(read_lines(FIXTURES / "binary.bin"))
    with pytest.raises(DataError, match=r"binary\.bin:1: NUL byte"):
        read_text(FIXTURES / "binary.bin")
    with pytest.raises(DataError, match="no such file"):
        list(read_lines(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="is a directory"):
        read_text(tmp_path)
    with pytest.raises(DataError, match="unknown text encoding"):
        list(read_lines(FIXTURES / "src.txt", encoding="klingon"))


def test_corrupt_gzip_is_a_data_error(tmp_path: Path):
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match=r"bad\.txt\.gz: cannot read"):
        list(read_lines(bad))


def test_read_text_whole_and_empty(tmp_path: Path):
    assert read_text(FIXTURES / "tgt.txt") == "a dog\ntwo cats\nthree birds\n"
    assert read_text(gzipped(FIXTURES / "tgt.txt", tmp_path)) == read_text(FIXTURES / "tgt.txt")
    with pytest.raises(DataError, match="empty corpus"):
        read_text(FIXTURES / "empty.txt")
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\n\t\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty corpus"):
        read_text(blank)
    with pytest.raises(DataError, match=r"cp1252\.txt:3: not valid utf-8"):
        read_text(FIXTURES / "cp1252.txt")


def test_read_labelled_lines():
    path = FIXTURES / "labelled.tsv"
    assert list(read_labelled_lines(path)) == [
        ("pos", "great movie"),
        ("neg", "awful , really\tbad"),
    ]
    assert list(read_labelled_lines(path, label_first=False))[1] == ("bad", "neg\tawful , really")
    with pytest.raises(DataError, match=r"labelled_bad\.tsv:2: expected LABEL<sep>TEXT"):
        list(read_labelled_lines(FIXTURES / "labelled_bad.tsv"))


# --------------------------------------------------------------------------- polarity


def test_read_polarity_decodes_cp1252_and_counts_blank_lines():
    data = read_polarity(FIXTURES / "mr.pos", FIXTURES / "mr.neg")
    assert data.examples == [
        ("a gorgeous , witty film .", 1),
        ("the caf\u00e9 scene sings \u2026", 1),
        ("dull and lifeless .", 0),
        ("na\u00efve to a fault .", 0),
    ]
    assert data.skipped_empty == 1


def test_polarity_folds_partition_deterministically():
    folds = polarity_folds(103, k=10, seed=7)
    assert len(folds) == 10
    tests = [i for _, test in folds for i in test]
    assert sorted(tests) == list(range(103))
    assert {len(test) for _, test in folds} == {10, 11}
    for train, test in folds:
        assert sorted(train + test) == list(range(103))
    assert folds == polarity_folds(103, k=10, seed=7)
    assert folds != polarity_folds(103, k=10, seed=8)


def test_polarity_folds_stratified():
    labels = [1] * 60 + [0] * 40
    for _, test in polarity_folds(100, k=10, seed=0, labels=labels):
        assert Counter(labels[i] for i in test) == {1: 6, 0: 4}
    with pytest.raises(ConfigError, match="2 <= k"):
        polarity_folds(5, k=6)


# --------------------------------------------------------------------------- CoNLL-U


def test_read_conllu_words_exclude_multiword_tokens_and_empty_nodes():
    first, second = read_conllu(FIXTURES / "tiny.conllu")
    assert first.forms == ("I", "do", "n't", "know", ".")
    assert first.upos == ("PRON", "AUX", "PART", "VERB", "PUNCT")
    assert first.xpos == ("PRP", "VBP", "RB", "VB", ".")
    assert len(first) == 5 and len(first.tokenlist) == 6  # + the 2-3 multiword token
    assert first.tokenlist.metadata["sent_id"] == "s1"
    assert first.line == 1 and second.line == 12
    assert second.forms == ("Mary", "left", "and", "John", "too", ".")
    assert len(second.tokenlist) == 7  # + the 3.1 empty node


def test_write_conllu_round_trips_every_column_and_comment(tmp_path: Path):
    original = (FIXTURES / "tiny.conllu").read_text(encoding="utf-8")
    sentences = list(read_conllu(FIXTURES / "tiny.conllu"))
    stream = io.StringIO()
    write_conllu(sentences, stream)
    assert stream.getvalue() == original
    out = tmp_path / "out.conllu.gz"
    write_conllu(sentences, out)
    assert gzip.decompress(out.read_bytes()).decode("utf-8") == original
    assert list(read_conllu(out)) == sentences


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad_columns", r"bad_columns\.conllu:5: expected 10 tab-separated columns, found 9"),
        ("bad_id", r"bad_id\.conllu:6: ID 'x2' is not an integer"),
        ("bad_head", r"bad_head\.conllu:5: .*head.*'zero'"),
    ],
)
def test_malformed_conllu_names_file_and_line(name: str, message: str):
    with pytest.raises(DataError, match=message):
        list(read_conllu(FIXTURES / f"{name}.conllu"))


# --------------------------------------------------------------------------- parallel


def test_read_parallel_pairs_and_length_mismatch(tmp_path: Path):
    pairs = list(read_parallel(FIXTURES / "src.txt", gzipped(FIXTURES / "tgt.txt", tmp_path)))
    assert pairs == [
        ("ein Hund", "a dog"),
        ("zwei Katzen", "two cats"),
        ("drei V\u00f6gel", "three birds"),
    ]
    with pytest.raises(DataError, match=r"src\.txt has 3 lines, .*tgt_short\.txt has 2"):
        list(read_parallel(FIXTURES / "src.txt", FIXTURES / "tgt_short.txt"))
    with pytest.raises(DataError, match=r"tgt_short\.txt has 2 lines, .*src\.txt has 3"):
        list(read_parallel(FIXTURES / "tgt_short.txt", FIXTURES / "src.txt"))


# --------------------------------------------------------------------------- bAbI


def test_read_babi_stories_questions_and_supporting_facts():
    examples = read_babi(FIXTURES / "babi.txt")
    assert [e.answer for e in examples] == ["bathroom", "hallway", "football", "garden"]
    second = examples[1]
    assert second.question == "Where is Daniel?"
    assert second.story == (
        "Mary moved to the bathroom.",
        "John went to the hallway.",
        "Daniel went back to the hallway.",
    )  # the earlier question is not part of the story
    assert second.supporting == (4,) and second.supporting_index == (2,)
    last = examples[3]  # a new story started at id 1
    assert last.story[0] == "Sandra travelled to the office."
    assert last.supporting == (2, 4) and last.supporting_index == (1, 2)


def test_malformed_babi_names_the_line():
    with pytest.raises(DataError, match=r"babi_bad\.txt:2: expected 'ID question<TAB>answer"):
        read_babi(FIXTURES / "babi_bad.txt")


# --------------------------------------------------------------------------- trees


def test_parse_tree_leaves_phrases_and_round_trip():
    text = "(3 (2 It) (4 (2 's) (3 (3 fun) (2 .))))"
    tree = parse_tree(text, binary=True)
    assert tree.label == 3 and not tree.is_leaf
    assert tree.leaves() == ["It", "'s", "fun", "."]
    assert [p.label for p in tree.phrases()] == [3, 2, 4, 2, 3, 3, 2]
    assert str(tree) == text
    assert parse_tree(text) == tree


def test_read_trees_multiword_leaf_and_single_leaf_tree(tmp_path: Path):
    trees = list(read_trees(FIXTURES / "trees.txt"))
    assert len(trees) == 3  # the blank line is skipped
    assert trees[1].leaves() == ["Contempt", "and", "8 1\\/2"]
    assert trees[2].is_leaf and trees[2].word == "Wonderful"
    assert list(read_trees(gzipped(FIXTURES / "trees.txt", tmp_path))) == trees


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(2 (2 Not) (2 closed)", r"<tree>:1: unbalanced '\(' is never closed"),
        ("(2 a))", r"<tree>:6: unexpected '\)' after the tree ended"),
        ("(x word)", r"<tree>:1: expected an integer label"),
        ("(2 (2 a) b)", r"<tree>:10: unexpected word 'b' after subtrees"),
        ("(2 )", r"<tree>:4: empty node"),
        ("word", r"<tree>:1: unexpected 'word' outside a tree"),
        ("   ", r"<tree>: no tree on this line"),
        ("(2 (2 a) (2 b) (2 c))", r"<tree>:1: node has 3 children; a binary tree needs 2"),
    ],
)
def test_parse_tree_errors_give_the_column(text: str, message: str):
    with pytest.raises(DataError, match=message):
        parse_tree(text, binary=True)


def test_tree_file_round_trip(tmp_path: Path):
    trees = list(read_trees(FIXTURES / "trees.txt"))
    for name in ("out.txt", "out.txt.gz"):
        write_trees(trees, tmp_path / name)
        again = list(read_trees(tmp_path / name))
        assert again == trees
        assert [t.leaves() for t in again] == [t.leaves() for t in trees]
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()[1] == (
        "(1 (2 (2 Contempt) (2 and)) (2 8 1\\/2))"
    )


def test_read_trees_binary_names_the_line_of_a_ternary_node(tmp_path: Path):
    path = tmp_path / "ternary.txt"
    path.write_text("(3 (2 a) (2 b))\n(2 (2 a) (2 b) (2 c))\n", encoding="utf-8")
    assert len(list(read_trees(path))) == 2  # binary not required: read as it is
    with pytest.raises(DataError, match=r"ternary\.txt:2:1: node has 3 children"):
        list(read_trees(path, binary=True))


def test_read_trees_errors_give_file_line_and_column():
    with pytest.raises(DataError, match=r"trees_unbalanced\.txt:2:1: unbalanced"):
        list(read_trees(FIXTURES / "trees_unbalanced.txt"))
    with pytest.raises(DataError, match=r"trees_junk\.txt:2:17: unexpected 'extra'"):
        list(read_trees(FIXTURES / "trees_junk.txt"))


# --------------------------------------------------------------------------- real data

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data is not beside the repo")


@needs_shared
def test_real_sst_train():
    trees = list(read_trees(SHARED / "sst" / "train.txt", binary=True))
    assert len(trees) == 8544
    assert Counter(t.label for t in trees) == {0: 1092, 1: 2218, 2: 1624, 3: 2322, 4: 1288}


@needs_shared
def test_real_ud_english_ewt_train():
    words = n_sentences = 0
    for sentence in read_conllu(SHARED / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz"):
        n_sentences += 1
        words += len(sentence)
    assert (n_sentences, words) == (12544, 204577)


@needs_shared
def test_real_rt_polarity():
    folder = SHARED / "rt_polarity"
    data = read_polarity(folder / "rt-polarity.pos", folder / "rt-polarity.neg")
    assert Counter(label for _, label in data.examples) == {1: 5331, 0: 5331}
    assert data.skipped_empty == 0


@needs_shared
def test_real_babi_multi30k_ptb():
    assert len(read_babi(SHARED / "babi" / "en" / "qa3_three-supporting-facts_train.txt")) == 1000
    folder = SHARED / "multi30k"
    assert sum(1 for _ in read_parallel(folder / "train.en.gz", folder / "train.de.gz")) == 29000
    assert sum(1 for _ in read_lines(SHARED / "ptb" / "ptb.train.txt")) == 42068
    assert len(read_text(SHARED / "tinyshakespeare" / "input.txt")) == 1115394

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from seqlab.data.vocab import Vocab
from seqlab.errors import DataError

SENTENCES = [["b", "a", "c"], ["a", "b", "d"], ["a", "e"], ["c", "b"]]
# counts: a 3, b 3, c 2, d 1, e 1


def test_order_is_specials_then_count_then_token():
    vocab = Vocab.build(SENTENCES)
    assert vocab.itos == ["<pad>", "<unk>", "a", "b", "c", "d", "e"]
    assert vocab.stoi["c"] == 4
    assert vocab.pad_index == 0
    assert vocab.unk_index == 1
    assert vocab.counts["a"] == 3
    assert vocab.counts["<pad>"] == 0


def test_min_count_and_max_size_including_specials():
    assert Vocab.build(SENTENCES, min_count=2).itos == ["<pad>", "<unk>", "a", "b", "c"]
    assert Vocab.build(SENTENCES, max_size=4).itos == ["<pad>", "<unk>", "a", "b"]
    assert len(Vocab.build(SENTENCES, max_size=4)) == 4


def test_min_count_that_leaves_no_words_is_a_data_error():
    with pytest.raises(DataError, match="min_count=5 left no words"):
        Vocab.build(SENTENCES, min_count=5)


def test_extra_specials_and_special_tokens_in_the_corpus():
    vocab = Vocab.build([["<unk>", "x", "x"]], specials=("<pad>", "<unk>", "<bos>", "<eos>"))
    assert vocab.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "x"]
    assert vocab.counts["<unk>"] == 1


def test_from_counter_equals_build():
    counts = Counter(token for sentence in SENTENCES for token in sentence)
    assert Vocab.from_counter(counts) == Vocab.build(SENTENCES)


def test_index_encode_decode_and_unknown_tokens():
    vocab = Vocab.build(SENTENCES)
    ids = vocab.encode(["a", "zzz", "e"])
    assert ids == [2, vocab.unk_index, 6]
    assert vocab.decode(ids) == ["a", "<unk>", "e"]
    assert "a" in vocab and "zzz" not in vocab
    for bad in (99, -1):
        with pytest.raises(DataError, match=f"index {bad} is out of range"):
            vocab.decode([bad])


def test_vocab_without_unk_or_pad_refuses_unknown_tokens():
    vocab = Vocab.build(SENTENCES, specials=("<eos>",))
    with pytest.raises(DataError, match="'zzz' is not in the vocabulary"):
        vocab.index("zzz")
    with pytest.raises(DataError, match="no <pad>"):
        _ = vocab.pad_index


def test_same_vocab_from_shuffled_input():
    rng = random.Random(0)
    tokens = [f"w{i % 7}" for i in range(100)] + [f"x{i}" for i in range(30)]
    shuffled = tokens[:]
    rng.shuffle(shuffled)
    assert Vocab.build([tokens]) == Vocab.build([shuffled])


SCRIPT = """
import json
from seqlab.data.vocab import Vocab
tokens = {f"tok{i}" for i in range(50)}  # set order depends on PYTHONHASHSEED
print(json.dumps(Vocab.build([list(tokens)]).itos))
"""


def test_order_does_not_depend_on_hash_seed():
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0][2:5] == ["tok0", "tok1", "tok10"]  # ties sorted by token


def test_save_load_round_trip(tmp_path: Path):
    vocab = Vocab.build(SENTENCES, specials=("<pad>", "<unk>", "<eos>"), min_count=1)
    path = tmp_path / "run" / "vocab.json"
    vocab.save(path)
    vocab.save(path)  # overwriting leaves no temporary files behind
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]
    loaded = Vocab.load(path)
    assert loaded == vocab
    assert loaded.itos == vocab.itos and loaded.counts == vocab.counts
    assert loaded.specials == ("<pad>", "<unk>", "<eos>")


def test_load_errors(tmp_path: Path):
    with pytest.raises(DataError, match="no such vocabulary file"):
        Vocab.load(tmp_path / "missing.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="garbage.json: not a readable vocabulary"):
        Vocab.load(garbage)
    other = tmp_path / "other.json"
    other.write_text('{"itos": ["a"]}', encoding="utf-8")
    with pytest.raises(DataError, match="not a seqlab vocabulary"):
        Vocab.load(other)
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"format": "seqlab.vocab/1", "itos": ["a"]}', encoding="utf-8")
    with pytest.raises(DataError, match="has no 'counts' entry"):
        Vocab.load(truncated)


def test_vocab_rejects_duplicates_and_misplaced_specials():
    with pytest.raises(DataError, match="more than once"):
        Vocab(["<pad>", "a", "a"], ("<pad>",), {})
    with pytest.raises(DataError, match="start with its specials"):
        Vocab(["a", "<pad>"], ("<pad>",), {})

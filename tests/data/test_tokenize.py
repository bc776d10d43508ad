from pathlib import Path

import pytest

from seqlab.data.tokenize import (
    TOKENIZERS,
    CharTokenizer,
    SentencePieceTokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
    build_tokenizer,
    train_sentencepiece,
)
from seqlab.errors import ConfigError, DataError

CORPUS = [
    "the cat sat on the mat",
    "the dog ate my homework",
    "a quick brown fox jumps over the lazy dog",
    "cats and dogs are not the same animals",
] * 10


def test_whitespace_splits_on_runs_of_whitespace():
    tokenizer = WhitespaceTokenizer()
    assert tokenizer.encode("  the cat\tsat\n on ") == ["the", "cat", "sat", "on"]
    assert tokenizer.decode(["the", "cat"]) == "the cat"


def test_word_tokenizer_splits_punctuation_and_clitics():
    text = (
        "Don't stop, John's U.S. co-writer said... it's 3.14 o'clock! "
        "I'm (really) \"happy\". Can't they'll"
    )
    assert WordTokenizer().encode(text) == [
        "Do", "n't", "stop", ",", "John", "'s", "U.S.", "co-writer", "said", "...",
        "it", "'s", "3.14", "o'clock", "!", "I", "'m", "(", "really", ")",
        '"', "happy", '"', ".", "Ca", "n't", "they", "'ll",
    ]  # fmt: skip


def test_word_tokenizer_loses_no_characters():
    text = "Naïve café—$5.00 at http://x.com; students' books (I'd've) rock-'n'-roll!?"
    tokens = WordTokenizer().encode(text)
    assert "".join(tokens) == "".join(text.split())
    assert "café" in tokens and "5.00" in tokens and "'ve" in tokens


def test_word_tokenizer_lower_and_quotes():
    assert WordTokenizer(lower=True).encode("'Hello' WORLD") == ["'", "hello", "'", "world"]


def test_char_tokenizer_keeps_newlines_and_round_trips():
    tokenizer = CharTokenizer()
    text = "To be,\nor not"
    assert tokenizer.encode(text)[6] == "\n"
    assert len(tokenizer.encode(text)) == len(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_build_tokenizer_by_name():
    assert set(TOKENIZERS.names()) == {"whitespace", "word", "char", "sentencepiece"}
    tokenizer = build_tokenizer("word", lower=True)
    assert tokenizer.encode("The END.") == ["the", "end", "."]
    with pytest.raises(ConfigError, match="did you mean 'word'"):
        build_tokenizer("wrod")


def pieces_and_scores(model: Path) -> list[tuple[str, float]]:
    processor = SentencePieceTokenizer(model).processor
    return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(len(processor))]


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_trains_deterministically_and_round_trips(tmp_path: Path, model_type):
    first = train_sentencepiece(CORPUS, tmp_path / "a", vocab_size=50, model_type=model_type)
    second = train_sentencepiece(CORPUS, tmp_path / "b", vocab_size=50, model_type=model_type)
    assert first == tmp_path / "a.model"
    assert pieces_and_scores(first) == pieces_and_scores(second)
    tokenizer = build_tokenizer("sentencepiece", model_file=first)
    pieces = tokenizer.encode("the cat ate the homework")
    assert pieces[0].startswith("\u2581")  # word-initial marker
    assert len(pieces) < len("the cat ate the homework")  # merges beyond characters
    assert tokenizer.decode(pieces) == "the cat ate the homework"


def test_sentencepiece_trains_from_a_file(tmp_path: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    model = train_sentencepiece(corpus, tmp_path / "m", vocab_size=40)
    assert SentencePieceTokenizer(model).processor.get_piece_size() <= 40


def test_sentencepiece_errors(tmp_path: Path):
    with pytest.raises(DataError, match="no such SentencePiece model"):
        SentencePieceTokenizer(tmp_path / "missing.model")
    with pytest.raises(DataError, match="model_type"):
        train_sentencepiece(CORPUS, tmp_path / "m", vocab_size=40, model_type="wordpiece")
    with pytest.raises(DataError, match="no such file"):
        train_sentencepiece(tmp_path / "missing.txt", tmp_path / "m", vocab_size=40)

"""Tokenizers: text -> list of token strings, and back.

Every tokenizer has ``encode(text) -> list[str]`` and ``decode(tokens) -> str``. They are
built by name from ``TOKENIZERS`` (``build_tokenizer("word", lower=True)``):

- ``whitespace``: ``str.split`` (PTB, MR and SST are already tokenized);
- ``word``: a regular-expression word tokenizer for raw text (rules below);
- ``char``: one token per character, newlines included (char-level LMs);
- ``sentencepiece``: subword pieces from a trained SentencePiece model file
  (train one with ``train_sentencepiece``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import sentencepiece as spm

from seqlab.errors import DataError
from seqlab.registry import Registry


class Tokenizer(Protocol):
    """What the rest of seqlab needs from a tokenizer."""

    def encode(self, text: str) -> list[str]: ...

    def decode(self, tokens: list[str]) -> str: ...


class WhitespaceTokenizer:
    """Split on runs of whitespace (``str.split``); ``decode`` joins with one space."""

    def encode(self, text: str) -> list[str]:
        return text.split()

    def decode(self, tokens: list[str]) -> str:
        return " ".join(tokens)


# Rules of WordTokenizer, tried left to right at each position (first match wins):
#   1. abbreviations of single letters with dots: "U.S.", "e.g.", "J.R.R."
#   2. the English clitics n't 's 'm 'd 'll 're 've as tokens of their own, split
#      Penn-Treebank style: "don't" -> "do n't", "can't" -> "ca n't", "John's" -> "John 's"
#   3. numbers with decimal points or thousands separators: "3.14", "1,000"
#   4. words: letters/digits/underscore, joined by inner hyphens or apostrophes that are
#      not clitics: "co-writer", "o'clock"
#   5. a run of one repeated punctuation or symbol character: "...", "!!", "--", "$"
_WORD_RE = re.compile(
    r"""
      (?:[^\W\d_]\.){2,}                            # 1. abbreviations
    | n't\b | '(?:s|m|d|ll|re|ve)\b                 # 2. clitics
    | \d+(?:[.,]\d+)+                               # 3. numbers
    | \w+?(?=n't\b)                                 # 4a. stem before n't ("do" of "don't")
    | \w+(?:[-'](?!(?:s|m|d|ll|re|ve)\b)\w+)*       # 4b. words
    | ([^\w\s])\1*                                  # 5. punctuation runs
    """,
    re.VERBOSE | re.IGNORECASE,
)


class WordTokenizer:
    """Regular-expression word tokenizer for raw English text.

    Splits punctuation from words and English clitics from their stems the Penn Treebank
    way ("don't" -> ``["do", "n't"]``, "John's" -> ``["John", "'s"]``), keeps abbreviations
    ("U.S."), decimal numbers ("3.14") and hyphenated words ("co-writer") whole, and keeps a
    run of the same punctuation mark together ("..."). See ``_WORD_RE`` for the exact rules.
    ``lower=True`` lower-cases every token.
    """

    def __init__(self, lower: bool = False) -> None:
        self.lower = lower

    def encode(self, text: str) -> list[str]:
        tokens = [match.group(0) for match in _WORD_RE.finditer(text)]
        return [token.lower() for token in tokens] if self.lower else tokens

    def decode(self, tokens: list[str]) -> str:
        return " ".join(tokens)


class CharTokenizer:
    """One token per character, whitespace and newlines included; ``decode`` concatenates."""

    def encode(self, text: str) -> list[str]:
        return list(text)

    def decode(self, tokens: list[str]) -> str:
        return "".join(tokens)


class SentencePieceTokenizer:
    """Subword pieces from a trained SentencePiece model (``.model`` file).

    ``encode`` returns pieces such as ``["▁the", "▁c", "at"]``; ``decode`` inverts it.
    """

    def __init__(self, model_file: str | os.PathLike[str]) -> None:
        path = Path(model_file)
        if not path.is_file():
            raise DataError(f"{path}: no such SentencePiece model file")
        self.model_file = path
        self.processor = spm.SentencePieceProcessor(model_file=str(path))

    def encode(self, text: str) -> list[str]:
        pieces: list[str] = self.processor.encode(text, out_type=str)
        return pieces

    def decode(self, tokens: list[str]) -> str:
        text: str = self.processor.decode_pieces(tokens)
        return text


def train_sentencepiece(
    texts_or_file: Iterable[str] | str | os.PathLike[str],
    model_prefix: str | os.PathLike[str],
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
) -> Path:
    """Train a SentencePiece model and return the path of ``<model_prefix>.model``.

    ``texts_or_file`` is either a text file (one sentence per line) or an iterable of
    sentences. ``model_type`` is ``"unigram"`` or ``"bpe"``. Training is deterministic: one
    thread, no input sampling or shuffling, so the same input gives the same model bytes.
    ``vocab_size`` is a soft limit, so tiny corpora give smaller vocabularies, not errors.
    """
    if model_type not in ("unigram", "bpe"):
        raise DataError(f"model_type must be 'unigram' or 'bpe', not {model_type!r}")
    options: dict[str, Any] = {
        "model_prefix": str(model_prefix),
        "vocab_size": vocab_size,
        "model_type": model_type,
        "character_coverage": character_coverage,
        "num_threads": 1,
        "input_sentence_size": 0,
        "shuffle_input_sentence": False,
        "hard_vocab_limit": False,
        "minloglevel": 2,
    }
    if isinstance(texts_or_file, str | os.PathLike):
        path = Path(texts_or_file)
        if not path.is_file():
            raise DataError(f"{path}: no such file to train SentencePiece on")
        options["input"] = str(path)
    else:
        options["sentence_iterator"] = iter(texts_or_file)
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as error:
        raise DataError(f"SentencePiece training failed: {error}") from None
    return Path(f"{model_prefix}.model")


TOKENIZERS: Registry[type[Any]] = Registry("tokenizer")
TOKENIZERS.register("whitespace", WhitespaceTokenizer)
TOKENIZERS.register("word", WordTokenizer)
TOKENIZERS.register("char", CharTokenizer)
TOKENIZERS.register("sentencepiece", SentencePieceTokenizer)


def build_tokenizer(name: str, **kwargs: Any) -> Tokenizer:
    """Build a registered tokenizer: ``build_tokenizer("sentencepiece", model_file=...)``."""
    tokenizer: Tokenizer = TOKENIZERS.get(name)(**kwargs)
    return tokenizer

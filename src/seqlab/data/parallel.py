"""Tokenisation of one side of a parallel corpus, and back to text (detokenised, cased).

Two kinds, chosen by ``data.tokenizer`` of a translation config:

* ``sentencepiece``: subword pieces of a SentencePiece model (BPE or unigram) trained on
  the training split (one per language, or one joint model); decoding joins the pieces.
* ``word``: Moses tokenisation (``sacremoses``, the rules of Moses' tokenizer.perl for the
  language) with a vocabulary cut-off; decoding is Moses detokenisation.

``lowercase`` lower-cases the text before either (and the output stays lower case).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sacremoses import MosesDetokenizer, MosesTokenizer

from seqlab.data.tokenize import SentencePieceTokenizer, train_sentencepiece
from seqlab.errors import DataError

TokenizerKind = Literal["sentencepiece", "word"]


class SideTokenizer:
    """Text of one language <-> tokens: ``encode(text) -> list[str]``, ``decode(tokens)``."""

    def __init__(
        self,
        kind: TokenizerKind,
        lang: str,
        model_file: Path | None = None,
        lowercase: bool = False,
    ) -> None:
        self.kind: TokenizerKind = kind
        self.lang = lang
        self.lowercase = lowercase
        self.pieces: SentencePieceTokenizer | None = None
        if kind == "sentencepiece":
            if model_file is None:
                raise DataError("a sentencepiece tokenizer needs its model file")
            self.pieces = SentencePieceTokenizer(model_file)
        elif kind == "word":
            self.moses = MosesTokenizer(lang=lang)
            self.detok = MosesDetokenizer(lang=lang)
        else:
            raise DataError(f"unknown tokenizer {kind!r} (sentencepiece or word)")

    def encode(self, text: str) -> list[str]:
        text = text.strip()
        if self.lowercase:
            text = text.lower()
        if self.pieces is not None:
            return self.pieces.encode(text)
        tokens: list[str] = self.moses.tokenize(text, escape=False)
        return tokens

    def decode(self, tokens: Sequence[str]) -> str:
        if self.pieces is not None:
            return self.pieces.decode(list(tokens))
        text: str = self.detok.detokenize(list(tokens))
        return text


def train_subword_model(
    texts: Sequence[str],
    model_file: Path,
    vocab_size: int,
    model_type: Literal["unigram", "bpe"],
    lowercase: bool = False,
) -> Path:
    """Train a SentencePiece model on ``texts`` into ``model_file`` (``spm_X.model``)."""
    prefix = model_file.with_suffix("")
    lines = [t.strip().lower() if lowercase else t.strip() for t in texts]
    return train_sentencepiece(
        (line for line in lines if line), prefix, vocab_size, model_type=model_type
    )

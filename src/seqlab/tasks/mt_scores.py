"""Translation scores in three conventions, all computed on the same detokenised output.

* ``bleu``, ``chrf``: sacreBLEU on detokenised, cased text (its own 13a tokenisation),
  the standard; the signatures say exactly how.
* ``bleu_tok_lc``: the PyTorch seq2seq tutorials' convention (bentrevett/pytorch-seq2seq:
  spaCy-tokenised, lower-cased, corpus BLEU-4 of torchtext). Here: Moses-tokenised
  (sacremoses, ``-a -no-escape``), lower-cased, BLEU-4 of the tokens as they are.
* ``bleu_moses``: OpenNMT-py's Multi30k example's convention: ``tokenizer.perl -a
  -no-escape``, cased, ``multi-bleu.perl`` (BLEU-4 of the tokens as they are).

Hypotheses and references are lists of lines (one per source).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF
from sacremoses import MosesTokenizer

from seqlab.errors import DataError


@functools.cache
def _tokenizer(lang: str) -> MosesTokenizer:
    return MosesTokenizer(lang=lang)


def _moses(lines: Sequence[str], lang: str, lower: bool) -> list[str]:
    tokenizer = _tokenizer(lang)
    out = []
    for line in lines:
        text = tokenizer.tokenize(line, escape=False, aggressive_dash_splits=True, return_str=True)
        out.append(text.lower() if lower else text)
    return out


def translation_scores(
    hypotheses: Sequence[str], references: Sequence[str], lang: str
) -> tuple[dict[str, float], dict[str, str]]:
    """(``{"bleu", "chrf", "bleu_tok_lc", "bleu_moses"}``, the signature of each)."""
    if len(hypotheses) != len(references):
        raise DataError(
            f"{len(hypotheses)} translations for {len(references)} references: they must match"
        )
    if not hypotheses:
        raise DataError("no sentences to score")
    refs = [list(references)]
    hyps = list(hypotheses)
    bleu, chrf = BLEU(), CHRF()
    scores = {
        "bleu": bleu.corpus_score(hyps, refs).score,
        "chrf": chrf.corpus_score(hyps, refs).score,
    }
    signatures = {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}
    pretokenised = BLEU(tokenize="none", force=True)
    for name, lower in (("bleu_tok_lc", True), ("bleu_moses", False)):
        tok_hyps = _moses(hyps, lang, lower)
        tok_refs = [_moses(references, lang, lower)]
        scores[name] = pretokenised.corpus_score(tok_hyps, tok_refs).score
        how = "lower-cased" if lower else "cased"
        signatures[name] = f"Moses-tokenised ({lang}, sacremoses -a), {how}; " + str(
            pretokenised.get_signature()
        )
    return scores, signatures

"""Build a plain-text English corpus from the training splits of the registered datasets.

word2vec needs running text; the datasets seqlab reads each hold some, in their own
format (PTB lines, CoNLL-U forms, SST trees, raw Multi30k captions). ``build_corpus``
writes one ``{dataset}.txt`` per source into a folder, one sentence per line, tokens
separated by single spaces, lower-cased by default and with digits left alone. The folder
is what ``task: word2vec`` takes as ``data.corpus``.

Only training splits are used, so vectors trained on the corpus never saw a dev or test
sentence of the tasks they are later used for. MR (``rt_polarity``) has no held-out split
of its own (it is evaluated by cross-validation), so it is not a source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from seqlab.data.readers import read_conllu, read_lines, read_trees
from seqlab.data.sources import resolve
from seqlab.data.tokenize import WordTokenizer
from seqlab.errors import DataError


def _ptb() -> Iterator[list[str]]:
    for line in read_lines(resolve("ptb", "train")):
        yield line.split()


def _ewt() -> Iterator[list[str]]:
    for sentence in read_conllu(resolve("ud_english_ewt", "train")):
        yield list(sentence.forms)


def _sst() -> Iterator[list[str]]:
    for tree in read_trees(resolve("sst", "train")):
        yield list(tree.leaves())


def _multi30k() -> Iterator[list[str]]:
    tokenizer = WordTokenizer()
    for line in read_lines(resolve("multi30k", "train.en")):
        yield tokenizer.encode(line)


SOURCES: dict[str, Callable[[], Iterable[list[str]]]] = {
    "ptb": _ptb,
    "ud_english_ewt": _ewt,
    "sst": _sst,
    "multi30k": _multi30k,
}
"""Dataset name -> the tokenised sentences of its training split."""


def build_corpus(
    out_dir: str | Path, datasets: Sequence[str] | None = None, lowercase: bool = True
) -> dict[str, dict[str, int]]:
    """Write ``{dataset}.txt`` for each dataset into ``out_dir``; return line/token counts.

    ``datasets`` defaults to every name in ``SOURCES``; an unknown name is a DataError that
    lists the known ones. Empty sentences are skipped and counted (``empty``).
    """
    names = list(SOURCES) if datasets is None else list(dict.fromkeys(datasets))
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise DataError(
            f"no corpus source for {', '.join(map(repr, unknown))} (known: {', '.join(SOURCES)})"
        )
    if not names:
        raise DataError("build_corpus needs at least one dataset")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: is a file; the corpus goes into a folder")
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for name in names:
        lines = tokens = empty = 0
        path = out / f"{name}.txt"
        with path.open("w", encoding="utf-8") as file:
            for sentence in SOURCES[name]():
                words = [w.lower() if lowercase else w for w in sentence if w and not w.isspace()]
                if not words:
                    empty += 1
                    continue
                file.write(" ".join(words) + "\n")
                lines += 1
                tokens += len(words)
        counts[name] = {"lines": lines, "tokens": tokens, "empty": empty}
    return counts

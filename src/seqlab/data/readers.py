"""Readers for the file formats of seqlab's datasets.

Plain text, labelled lines (TSV), sentence polarity (MR), CoNLL-U, parallel text, bAbI and
PTB-style bracketed trees (SST). Files ending in ``.gz`` are decompressed on the fly.
Readers of files that can be large are generators. Every problem with a file is a
``DataError`` whose message starts with ``path:line`` (and column, for trees).
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import os
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import IO, NamedTuple, TextIO

from conllu.exceptions import ParseException
from conllu.models import Metadata, Token, TokenList
from conllu.parser import DEFAULT_FIELDS, parse_comment_line, parse_line

from seqlab.errors import ConfigError, DataError, where
from seqlab.io import atomic_path

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- plain text


def _open_binary(path: Path) -> IO[bytes] | gzip.GzipFile:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _check_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    return path


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r}") from None


def _decode(raw: bytes, path: Path, line: int, encoding: str) -> str:
    if b"\x00" in raw:
        raise DataError(f"{where(path, line)}: NUL byte; this looks like a binary file, not text")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise DataError(
            f"{where(path, line)}: not valid {encoding}; pass the file's encoding, "
            "e.g. encoding='cp1252'"
        ) from None


def _numbered_lines(path: PathLike, encoding: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` from 1, without the line ending."""
    path = _check_file(path)
    _check_encoding(encoding)
    try:
        with _open_binary(path) as file:
            for number, raw in enumerate(file, start=1):
                yield number, _decode(raw, path, number, encoding).rstrip("\r\n")
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None


def read_lines(path: PathLike, encoding: str = "utf-8") -> Iterator[str]:
    """Yield the lines of a text file (``.gz`` ok) without line endings, blank ones too."""
    for _, line in _numbered_lines(path, encoding):
        yield line


def read_text(path: PathLike, encoding: str = "utf-8") -> str:
    """The whole text of a file, unchanged (for character-level language models).

    A file with no text, or only whitespace, is a DataError ("empty corpus").
    """
    path = _check_file(path)
    _check_encoding(encoding)
    try:
        with _open_binary(path) as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(f"{where(path, line)}: NUL byte; this looks like a binary file, not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{where(path, line)}: not valid {encoding}; pass the file's encoding, "
            "e.g. encoding='cp1252'"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: empty corpus (the file has no text)")
    return text


def read_labelled_lines(
    path: PathLike, sep: str = "\t", label_first: bool = True, encoding: str = "utf-8"
) -> Iterator[tuple[str, str]]:
    """Yield ``(label, text)`` from ``LABEL<sep>TEXT`` lines (``TEXT<sep>LABEL`` if not
    ``label_first``). Blank lines are skipped; a line without ``sep`` is a DataError."""
    for number, line in _numbered_lines(path, encoding):
        if not line.strip():
            continue
        if sep not in line:
            layout = "LABEL<sep>TEXT" if label_first else "TEXT<sep>LABEL"
            raise DataError(f"{where(path, number)}: expected {layout} with sep={sep!r}")
        if label_first:
            label, text = line.split(sep, 1)
        else:
            text, label = line.rsplit(sep, 1)
        if not label.strip():
            raise DataError(f"{where(path, number)}: empty label")
        yield label.strip(), text.strip()


# --------------------------------------------------------------------------- MR polarity


class PolarityData(NamedTuple):
    """Sentence-polarity examples and how many blank lines were skipped to get them."""

    examples: list[tuple[str, int]]  # (text, label): 1 positive, 0 negative; positives first
    skipped_empty: int  # blank lines skipped (0 for the MR v1.0 release)


def read_polarity(pos_path: PathLike, neg_path: PathLike, encoding: str = "cp1252") -> PolarityData:
    """Read the Pang & Lee sentence polarity files (one snippet per line, cp1252).

    Returns all positive examples (label 1) then all negative ones (label 0), each text
    stripped of surrounding whitespace. Blank lines are not examples: they are skipped
    and their number is returned as ``skipped_empty`` so a caller can report it.
    """
    examples: list[tuple[str, int]] = []
    skipped = 0
    for path, label in ((pos_path, 1), (neg_path, 0)):
        for line in read_lines(path, encoding):
            text = line.strip()
            if text:
                examples.append((text, label))
            else:
                skipped += 1
    return PolarityData(examples, skipped)


def polarity_folds(
    n_examples: int, k: int = 10, seed: int = 0, labels: list[int] | None = None
) -> list[tuple[list[int], list[int]]]:
    """Deterministic k-fold cross-validation splits of ``range(n_examples)``.

    Returns ``k`` pairs ``(train_indices, test_indices)``, each list sorted; every index is
    in exactly one test fold and fold sizes differ by at most one. With ``labels`` the
    folds are stratified: each label is spread over the folds as evenly as possible. The
    same ``seed`` always gives the same folds.
    """
    if not 2 <= k <= n_examples:
        raise ConfigError(f"k-fold needs 2 <= k <= n_examples, got k={k}, n={n_examples}")
    if labels is not None and len(labels) != n_examples:
        raise ConfigError(f"{len(labels)} labels for {n_examples} examples")
    rng = random.Random(seed)
    groups = [list(range(n_examples))]
    if labels is not None:
        groups = [[i for i in range(n_examples) if labels[i] == y] for y in sorted(set(labels))]
    order: list[int] = []
    for group in groups:
        rng.shuffle(group)
        order.extend(group)
    folds: list[list[int]] = [[] for _ in range(k)]
    for position, index in enumerate(order):
        folds[position % k].append(index)
    splits = []
    for fold in folds:
        test = set(fold)
        splits.append(([i for i in range(n_examples) if i not in test], sorted(fold)))
    return splits


# --------------------------------------------------------------------------- CoNLL-U

_CONLLU_ID = re.compile(r"[0-9]+|[0-9]+-[0-9]+|[0-9]+\.[0-9]+")
_KEEP_ALL_COMMENTS = {"__fallback__": lambda key, value: (key, value)}


@dataclass(frozen=True)
class Sentence:
    """One CoNLL-U sentence.

    ``forms``, ``upos`` and ``xpos`` hold the syntactic words only (integer ids): multiword
    tokens (``3-4``) and empty nodes (``5.1``) are left out of them but kept, with every
    column and comment, in ``tokenlist`` for ``write_conllu``. A missing value is ``"_"``.
    ``line`` is the line number where the sentence starts in its file.
    """

    forms: tuple[str, ...]
    upos: tuple[str, ...]
    xpos: tuple[str, ...]
    tokenlist: TokenList
    line: int

    def __len__(self) -> int:
        return len(self.forms)


def _parse_token(line: str, path: Path, number: int) -> Token:
    columns = line.split("\t")
    if len(columns) != len(DEFAULT_FIELDS):
        raise DataError(
            f"{where(path, number)}: expected {len(DEFAULT_FIELDS)} tab-separated columns, "
            f"found {len(columns)}"
        )
    if not _CONLLU_ID.fullmatch(columns[0]):
        raise DataError(
            f"{where(path, number)}: ID {columns[0]!r} is not an integer, a range (3-4) "
            "or a decimal (5.1)"
        )
    try:
        return parse_line(line, DEFAULT_FIELDS)
    except ParseException as error:
        raise DataError(f"{where(path, number)}: {error}") from None


def _make_sentence(block: list[tuple[int, str]], path: Path) -> Sentence:
    metadata = Metadata()
    tokens = []
    for number, line in block:
        if line.startswith("#"):
            metadata.update(parse_comment_line(line, _KEEP_ALL_COMMENTS))
        else:
            tokens.append(_parse_token(line, path, number))
    start = block[0][0]
    if not tokens:
        raise DataError(f"{where(path, start)}: sentence has comment lines but no tokens")
    tokenlist = TokenList(tokens, metadata, default_fields=DEFAULT_FIELDS)
    words = [token for token in tokenlist if isinstance(token["id"], int)]
    return Sentence(
        forms=tuple(word["form"] for word in words),
        upos=tuple(word["upos"] for word in words),
        xpos=tuple(word["xpos"] or "_" for word in words),
        tokenlist=tokenlist,
        line=start,
    )


def read_conllu(path: PathLike, encoding: str = "utf-8") -> Iterator[Sentence]:
    """Yield the sentences of a CoNLL-U file (``.gz`` ok), one ``Sentence`` each.

    Token lines must have 10 tab-separated columns and an integer, range or decimal ID;
    anything else is a DataError naming ``path:line``.
    """
    return parse_conllu_lines(read_lines(path, encoding), path)


def parse_conllu_lines(lines: Iterable[str], source: PathLike = "<input>") -> Iterator[Sentence]:
    """Yield the sentences of CoNLL-U text given as lines (numbered from 1, line endings
    optional); errors name ``source:line``."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if line.strip():
            block.append((number, line))
        elif block:
            yield _make_sentence(block, Path(source))
            block = []
    if block:
        yield _make_sentence(block, Path(source))


def write_conllu(sentences: Iterable[Sentence | TokenList], out: PathLike | TextIO) -> None:
    """Write sentences in CoNLL-U, every column and comment as read (``.gz`` by suffix).

    A path is written atomically: to a temporary file that then replaces ``out``.
    """
    if not isinstance(out, str | os.PathLike):
        _write_sentences(sentences, out)
        return
    path = Path(out)
    opener = gzip.open if path.suffix == ".gz" else open
    with atomic_path(path) as tmp, opener(tmp, "wt", encoding="utf-8", newline="\n") as file:
        _write_sentences(sentences, file)


def _write_sentences(sentences: Iterable[Sentence | TokenList], file: TextIO) -> None:
    for sentence in sentences:
        tokenlist = sentence.tokenlist if isinstance(sentence, Sentence) else sentence
        file.write(tokenlist.serialize())


# --------------------------------------------------------------------------- parallel text


def read_parallel(
    src_path: PathLike, tgt_path: PathLike, encoding: str = "utf-8"
) -> Iterator[tuple[str, str]]:
    """Yield ``(source, target)`` line pairs of two aligned files (``.gz`` ok).

    Files with different numbers of lines are a DataError naming both files and their line
    counts, raised after the last pair.
    """
    n_src = n_tgt = 0
    pairs = zip_longest(read_lines(src_path, encoding), read_lines(tgt_path, encoding))
    for source, target in pairs:
        n_src += source is not None
        n_tgt += target is not None
        if source is not None and target is not None:
            yield source, target
    if n_src != n_tgt:
        raise DataError(
            f"parallel files differ in length: {src_path} has {n_src} lines, {tgt_path} has {n_tgt}"
        )


# --------------------------------------------------------------------------- bAbI


@dataclass(frozen=True)
class BabiExample:
    """One bAbI question with the story told before it.

    ``story`` holds the story's statements up to the question (earlier questions left
    out) and ``story_ids`` their line ids in the file; ``supporting`` are the line ids of
    the supporting facts, so ``supporting_index`` gives their positions in ``story``.
    ``answer`` is kept whole: a list (task 8, ``apple,football``) or a path (task 19,
    ``n,w``) is one answer, as the bAbI papers score it. ``line`` is the question's line
    number in its file (for error messages); ``answer`` is empty for a question asked
    without one (``seqlab predict``); ``story_number`` counts the file's stories from 0.
    """

    story: tuple[str, ...]
    story_ids: tuple[int, ...]
    question: str
    answer: str
    supporting: tuple[int, ...]
    line: int = 0
    story_number: int = 0

    @property
    def supporting_index(self) -> tuple[int, ...]:
        return tuple(self.story_ids.index(i) for i in self.supporting)


def read_babi(path: PathLike) -> list[BabiExample]:
    """Read a bAbI task file: ``ID statement`` lines and
    ``ID question<TAB>answer<TAB>supporting ids`` lines; an ID of 1 starts a new story.
    Returns one ``BabiExample`` per question. A question before any statement of its
    story, a supporting id that is not a statement of the story, and a file without
    questions are DataErrors naming the file (and line).
    """
    examples = parse_babi(_numbered_lines(path, "utf-8"), path)
    if not examples:
        raise DataError(f"{path}: no bAbI questions (empty task file)")
    return examples


def parse_babi(
    lines: Iterable[tuple[int, str]], path: PathLike, *, answers: bool = True
) -> list[BabiExample]:
    """Parse numbered bAbI lines (see :func:`read_babi`). With ``answers=False`` (stories
    given to ``seqlab predict``) a question is a line with a TAB or ending in ``?``, and
    its answer and supporting ids may be left out."""
    examples: list[BabiExample] = []
    story: list[tuple[int, str]] = []
    stories = 0
    for number, line in lines:
        if not line.strip():
            continue
        line_id, _, text = line.strip().partition(" ")
        if not line_id.isdigit() or not text.strip():
            raise DataError(f"{where(path, number)}: expected 'ID text', got {line!r}")
        if int(line_id) == 1:
            story = []
            stories += 1
        is_question = "\t" in text or (not answers and text.rstrip().endswith("?"))
        if not is_question:
            story.append((int(line_id), text.strip()))
            continue
        if not story:
            raise DataError(f"{where(path, number)}: a question before any statement of its story")
        question = _babi_question(text, story, path, number, answers)
        examples.append(dataclasses.replace(question, story_number=stories - 1))
    return examples


def _babi_question(
    text: str, story: list[tuple[int, str]], path: PathLike, number: int, answers: bool
) -> BabiExample:
    fields = text.split("\t")
    if not answers:
        fields = (fields + ["", ""])[:3]
    if len(fields) != 3 or (answers and not fields[1].strip()):
        raise DataError(
            f"{where(path, number)}: expected 'ID question<TAB>answer<TAB>supporting ids'"
        )
    question, answer, support = fields
    story_ids = tuple(i for i, _ in story)
    try:
        supporting = tuple(int(i) for i in support.split())
    except ValueError:
        raise DataError(
            f"{where(path, number)}: supporting ids {support!r} are not integers"
        ) from None
    missing = [i for i in supporting if i not in story_ids]
    if missing:
        raise DataError(
            f"{where(path, number)}: supporting ids {missing} are not statements of the story "
            f"(it has ids {story_ids[0]}-{story_ids[-1]})"
        )
    return BabiExample(
        story=tuple(s for _, s in story),
        story_ids=story_ids,
        question=question.strip(),
        answer=answer.strip(),
        supporting=supporting,
        line=number,
    )


_BABI_WORD = re.compile(r"[\w']+")


def babi_tokens(text: str) -> list[str]:
    """Lower-cased words of a bAbI sentence or question, punctuation dropped:
    ``"Where is Mary?"`` -> ``["where", "is", "mary"]``."""
    return _BABI_WORD.findall(text.lower())


# --------------------------------------------------------------------------- trees


@dataclass(frozen=True)
class Tree:
    """A labelled constituency tree as in the Stanford Sentiment Treebank.

    A leaf has a ``word`` and no children; an inner node has children and no word. Every
    node has an integer ``label`` (for SST, sentiment 0-4).
    """

    label: int
    children: tuple[Tree, ...] = ()
    word: str | None = None

    @property
    def is_leaf(self) -> bool:
        return self.word is not None

    def leaves(self) -> list[str]:
        """The words of the sentence, left to right."""
        return [node.word for node in self.phrases() if node.word is not None]

    def phrases(self) -> list[Tree]:
        """Every subtree (the root, inner nodes and leaves), in pre-order."""
        nodes: list[Tree] = []
        stack: list[Tree] = [self]
        while stack:
            node = stack.pop()
            nodes.append(node)
            stack.extend(reversed(node.children))
        return nodes

    def __str__(self) -> str:
        if self.word is not None:
            return f"({self.label} {self.word})"
        return f"({self.label} {' '.join(str(child) for child in self.children)})"


_TREE_TOKEN = re.compile(r"\(|\)|[^\s()]+")


@dataclass
class _OpenNode:
    label: int
    column: int
    children: list[Tree]
    word: str | None = None
    word_start: int | None = None


def parse_tree(
    text: str, path: PathLike | None = None, line: int | None = None, binary: bool = False
) -> Tree:
    """Parse one bracketed tree such as ``(3 (2 It) (4 (2 's) (3 fun)))``.

    ``binary=True`` also requires every inner node to have exactly two children. Errors
    are DataErrors located as ``path:line:column`` (column 1-based).
    """
    location = where(path if path is not None else "<tree>", line)
    stack: list[_OpenNode] = []
    root: Tree | None = None
    tokens = list(_TREE_TOKEN.finditer(text))
    position = 0
    while position < len(tokens):
        match = tokens[position]
        token, column = match.group(0), match.start() + 1
        if root is not None:
            raise DataError(f"{location}:{column}: unexpected {token!r} after the tree ended")
        if token == "(":
            label = tokens[position + 1].group(0) if position + 1 < len(tokens) else ""
            if not re.fullmatch(r"-?[0-9]+", label):
                raise DataError(f"{location}:{column}: expected an integer label after '('")
            stack.append(_OpenNode(int(label), column, []))
            position += 2
            continue
        if not stack:
            raise DataError(f"{location}:{column}: unexpected {token!r} outside a tree")
        node = stack[-1]
        if token == ")":
            done = _close(stack.pop(), location, column, binary)
            if stack:
                stack[-1].children.append(done)
            else:
                root = done
        elif node.children:
            raise DataError(f"{location}:{column}: unexpected word {token!r} after subtrees")
        else:  # a leaf's word may contain spaces, as SST's "(2 8 1\\/2)"
            if node.word_start is None:
                node.word_start = match.start()
            node.word = text[node.word_start : match.end()]
        position += 1
    if stack:
        raise DataError(f"{location}:{stack[-1].column}: unbalanced '(' is never closed")
    if root is None:
        raise DataError(f"{location}: no tree on this line")
    return root


def _close(node: _OpenNode, location: str, column: int, binary: bool) -> Tree:
    if node.word is not None:
        if node.children:
            raise DataError(f"{location}:{node.column}: node has both a word and children")
        return Tree(node.label, word=node.word)
    if not node.children:
        raise DataError(f"{location}:{column}: empty node (no word, no children)")
    if binary and len(node.children) != 2:
        raise DataError(
            f"{location}:{node.column}: node has {len(node.children)} children; "
            "a binary tree needs 2"
        )
    return Tree(node.label, tuple(node.children))


def read_trees(path: PathLike, binary: bool = False) -> Iterator[Tree]:
    """Yield one ``Tree`` per non-blank line of a PTB-style tree file (``.gz`` ok)."""
    for number, line in _numbered_lines(path, "utf-8"):
        if line.strip():
            yield parse_tree(line, path, number, binary)


def write_trees(trees: Iterable[Tree], out: PathLike) -> None:
    """Write one bracketed tree per line (``str(tree)``), atomically; ``.gz`` by suffix.

    ``read_trees`` reads the file back into equal trees.
    """
    path = Path(out)
    opener = gzip.open if path.suffix == ".gz" else open
    with atomic_path(path) as tmp, opener(tmp, "wt", encoding="utf-8", newline="\n") as file:
        for tree in trees:
            file.write(f"{tree}\n")

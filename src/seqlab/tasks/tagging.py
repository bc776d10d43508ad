"""Sequence tagging (task ``tagging``): POS tags from CoNLL-U, or BIO tags from column files.

Data: ``data.format = conllu`` reads the ``upos`` or ``xpos`` column (``data.column``) of
CoNLL-U files (multiword-token and empty-node lines are kept for output but not tagged);
``data.format = columns`` reads whitespace-separated column files (word in column
``word_column``, tag in ``tag_column``; ``-DOCSTART-`` lines skipped), BIO-tagged NER or
chunking, scored by seqeval span F1 too. With CoNLL-U, ``data.aux_column`` names a second
tag column (``xpos`` next to ``upos``, or the reverse) that an auxiliary head learns jointly
(multi-task); its accuracy is reported as ``{split}_aux_acc`` and ``seqlab predict`` fills
both columns.

Handling of bad input (nothing is dropped silently; counts go to ``data_report.json``):

* a sentence longer than ``data.max_length`` is tagged in consecutive pieces of at most
  ``max_length`` words, in training and at test time (``{split}_long_sentences``);
* a gold tag at evaluation that training never saw cannot be predicted: it counts as an
  error in accuracy and is reported (``{split}_unknown_tags``);
* a broken CoNLL-U or column line is a DataError naming ``file:line``.

Metrics (``evaluate``): ``{split}_acc``, ``{split}_oov_acc`` / ``{split}_iv_acc`` (words
outside / inside the word vocabulary: unseen / seen in training with ``min_count: 1``),
``{split}_oov_rate``, ``{split}_macro_f1``,
``{split}_span_f1`` (BIO only). Per-tag precision/recall/F1 and the confusion matrix are
written to ``RUN_DIR/tags_{split}.json`` by ``write_report``, after training's final
evaluation and by ``seqlab eval`` (``seqlab plot RUN_DIR --kind confusion``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from conllu.models import Token, TokenList
from torch import nn

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, move_to
from seqlab.data.batching import bucket_batches, pad_batch
from seqlab.data.readers import Sentence, parse_conllu_lines, read_conllu
from seqlab.data.sources import resolve
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError, RunDirError, where
from seqlab.io import atomic_write_text
from seqlab.models.tagger import Tagger, TaggerBatch, TaggerConfig
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask, save_data_report
from seqlab.tasks.transfer import start_from
from seqlab.train.device import module_device

SPLIT_ROLES = {"train": "train", "val": "dev", "test": "test"}


@dataclass(frozen=True)
class TaggingDataConfig:
    dataset: str = "ud_english_ewt"
    """A dataset name (files found by ``resolve(dataset, train|dev|test)``), or unused when
    ``train``/``dev``/``test`` paths are given."""
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    format: Literal["conllu", "columns"] = "conllu"
    column: Literal["upos", "xpos"] = "upos"
    aux_column: Literal["none", "upos", "xpos"] = "none"
    """CoNLL-U only: a second tag column learnt by an auxiliary head (multi-task)."""
    word_column: int = 0
    tag_column: int = -1
    scheme: Literal["none", "bio"] = "none"
    """``bio``: tags are BIO/IOB2 spans; also report seqeval span F1."""
    lowercase: bool = False
    """Lowercase word-embedding lookups (characters keep their case)."""
    min_count: int = 1
    max_length: int = 200
    max_word_length: int = 30
    """Characters of a word beyond this are cut for the char features (counted)."""
    eval_batch_size: int = 256

    def validate(self) -> None:
        if min(self.max_length, self.max_word_length, self.eval_batch_size) < 1:
            raise ConfigError(
                "data.max_length, data.max_word_length and data.eval_batch_size must be >= 1"
            )
        if self.aux_column != "none" and self.format != "conllu":
            raise ConfigError("data.aux_column needs data.format: conllu")
        if self.aux_column == self.column:
            raise ConfigError(f"data.aux_column must differ from data.column ({self.column})")


@dataclass
class TaggedSentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    aux: tuple[str, ...] = ()
    """The auxiliary tag column, empty without one."""


@dataclass
class TaggingData:
    vocab: Vocab
    chars: Vocab
    tags: list[str]
    splits: dict[str, list[TaggedSentence]]
    run_dir: Path
    report: dict[str, dict[str, int]] = field(default_factory=dict)
    aux_tags: list[str] = field(default_factory=list)
    """Tags of the auxiliary column (empty without ``data.aux_column``)."""


# ----------------------------------------------------------------------------- reading


def read_columns(
    path: Path, word_column: int, tag_column: int
) -> Iterator[tuple[TaggedSentence, int]]:
    """Sentences of a column file with the line each starts on; blank lines separate them."""
    words: list[str] = []
    tags: list[str] = []
    start = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                if words:
                    yield TaggedSentence(tuple(words), tuple(tags)), start
                words, tags = [], []
                continue
            if fields[0] == "-DOCSTART-":
                continue
            try:
                word, tag = fields[word_column], fields[tag_column]
            except IndexError:
                raise DataError(
                    f"{where(path, number)}: expected a word in column {word_column} and a "
                    f"tag in column {tag_column}, found {len(fields)} columns"
                ) from None
            if not words:
                start = number
            words.append(word)
            tags.append(tag)
    if words:
        yield TaggedSentence(tuple(words), tuple(tags)), start


def _split_path(dcfg: TaggingDataConfig, split: str) -> Path:
    explicit = {"train": dcfg.train, "val": dcfg.dev, "test": dcfg.test}[split]
    if explicit is not None:
        return resolve(explicit)
    return resolve(dcfg.dataset, SPLIT_ROLES[split])


def _tag_of(sentence: Sentence, column: str) -> tuple[str, ...]:
    return sentence.upos if column == "upos" else sentence.xpos


def read_split(dcfg: TaggingDataConfig, path: Path) -> list[TaggedSentence]:
    if dcfg.format == "conllu":
        aux = dcfg.aux_column
        sentences = [
            TaggedSentence(
                s.forms, _tag_of(s, dcfg.column), _tag_of(s, aux) if aux != "none" else ()
            )
            for s in read_conllu(path)
        ]
    else:
        sentences = [s for s, _ in read_columns(path, dcfg.word_column, dcfg.tag_column)]
    if not sentences:
        raise DataError(f"{path}: empty corpus (no sentences)")
    return sentences


# ----------------------------------------------------------------------------- the task


def _build_tagger(cfg: ExperimentConfig, data: TaggingData) -> Tagger:
    """A tagger sized to the vocabularies and tag sets (word counts for word dropout)."""
    return Tagger(
        cfg.model,
        len(data.vocab),
        len(data.chars),
        len(data.tags),
        data.vocab.unk_index,
        num_aux_tags=len(data.aux_tags),
        word_counts=torch.tensor([data.vocab.counts[w] for w in data.vocab.itos]),
    )


TAGGING_MODELS: Registry[ModelSpec[TaggingData]] = Registry("tagging model")
TAGGING_MODELS.register("tagger", ModelSpec(TaggerConfig, _build_tagger))


class TaggingTask(TrainedTask[TaggingData]):
    name = "tagging"
    data_config = TaggingDataConfig
    models = TAGGING_MODELS
    default_model = "tagger"

    def start_model(self, cfg: ExperimentConfig, model: nn.Module, data: TaggingData) -> None:
        start_from(cfg, model, data.vocab.itos)

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> TaggingData:
        dcfg: TaggingDataConfig = cfg.data
        splits = {name: read_split(dcfg, _split_path(dcfg, name)) for name in SPLIT_ROLES}
        if train:
            words = [self._key(dcfg, w) for s in splits["train"] for w in s.words]
            vocab = Vocab.from_counter(Counter(words), min_count=dcfg.min_count)
            chars = Vocab.build(w for s in splits["train"] for w in s.words)
            tags = sorted({t for s in splits["train"] for t in s.tags})
            aux_tags = sorted({t for s in splits["train"] for t in s.aux})
            vocab.save(RunDir(run_dir).vocab)
            chars.save(RunDir(run_dir).chars)
            atomic_write_text(RunDir(run_dir).tags, json.dumps(tags))
            if aux_tags:
                atomic_write_text(RunDir(run_dir).aux_tags, json.dumps(aux_tags))
        else:
            vocab, chars, tags, aux_tags = _load_vocabs(run_dir)
        data = TaggingData(vocab, chars, tags, splits, run_dir, aux_tags=aux_tags)
        self._report(data, write=train)
        return data

    def setup_eval(
        self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None
    ) -> TaggingData:
        """With ``data_path``: that file (in ``data.format``) is the ``test`` split."""
        if data_path is None:
            return self.setup(cfg, run_dir, train=False)
        dcfg: TaggingDataConfig = cfg.data
        vocab, chars, tags, aux_tags = _load_vocabs(run_dir)
        test = read_split(dcfg, resolve(data_path))
        data = TaggingData(vocab, chars, tags, {"test": test}, run_dir, aux_tags=aux_tags)
        self._report(data, write=False)
        return data

    @staticmethod
    def _key(dcfg: TaggingDataConfig, word: str) -> str:
        return word.lower() if dcfg.lowercase else word

    def _report(self, data: TaggingData, *, write: bool) -> None:
        """Counts per split into ``data.report``; into the run dir's data_report.json only
        when ``write`` (training), so a loaded run (eval, serve) leaves its run dir as it is."""
        known = set(data.tags)
        report = {}
        for split, sentences in data.splits.items():
            tags = [t for s in sentences for t in s.tags]
            report[split] = {
                "sentences": len(sentences),
                "tokens": len(tags),
                "unknown_tags": sum(t not in known for t in tags),
            }
        data.report = report
        if write:
            save_data_report(data.run_dir, report)

    def splits(self, data: TaggingData) -> list[str]:
        return [s for s in ("val", "test") if s in data.splits]

    # -- batches ------------------------------------------------------------------------

    def make_batch(
        self, cfg: ExperimentConfig, data: TaggingData, pieces: Sequence[TaggedSentence]
    ) -> TaggerBatch:
        """Pad ``pieces`` (each at most ``max_length`` words) into one batch."""
        dcfg: TaggingDataConfig = cfg.data
        index = {t: i for i, t in enumerate(data.tags)}
        ids = [data.vocab.encode(self._key(dcfg, w) for w in p.words) for p in pieces]
        words = pad_batch(ids, data.vocab.pad_index)
        steps = words.ids.shape[1]
        width = min(dcfg.max_word_length, max(len(w) for p in pieces for w in p.words))
        chars = torch.zeros(len(pieces), steps, max(width, 1), dtype=torch.long)
        char_lengths = torch.zeros(len(pieces), steps, dtype=torch.long)
        tags = torch.full((len(pieces), steps), -1, dtype=torch.long)
        aux_index = {t: i for i, t in enumerate(data.aux_tags)}
        with_aux = bool(aux_index) and any(p.aux for p in pieces)
        aux = torch.full((len(pieces), steps), -1, dtype=torch.long) if with_aux else None
        for b, piece in enumerate(pieces):
            for t, word in enumerate(piece.words):
                codes = data.chars.encode(word[:width])
                chars[b, t, : len(codes)] = torch.tensor(codes)
                char_lengths[b, t] = max(len(codes), 1)  # an empty form still has one step
            tags[b, : len(piece.tags)] = torch.tensor([index.get(t, -1) for t in piece.tags])
            if aux is not None and piece.aux:
                aux[b, : len(piece.aux)] = torch.tensor([aux_index.get(t, -1) for t in piece.aux])
        return TaggerBatch(words, chars, char_lengths, tags, aux)

    @staticmethod
    def pieces(sentences: Sequence[TaggedSentence], max_length: int) -> list[TaggedSentence]:
        """Cut sentences longer than ``max_length`` into consecutive pieces."""
        out = []
        for s in sentences:
            for start in range(0, max(len(s.words), 1), max_length):
                end = start + max_length
                out.append(TaggedSentence(s.words[start:end], s.tags[start:end], s.aux[start:end]))
        return out

    def train_batches(
        self, cfg: ExperimentConfig, data: TaggingData, epoch: int
    ) -> Iterator[TaggerBatch]:
        dcfg: TaggingDataConfig = cfg.data
        pieces = self.pieces(data.splits["train"], dcfg.max_length)
        order = bucket_batches(
            [len(p.words) for p in pieces],
            cfg.trainer.batch_size,
            shuffle=True,
            seed=cfg.trainer.seed * 100_003 + epoch,
        )
        for chosen in order:
            yield self.make_batch(cfg, data, [pieces[i] for i in chosen])

    # -- evaluation ---------------------------------------------------------------------

    def tag_sentences(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: TaggingData,
        words: list[tuple[str, ...]],
    ) -> list[list[str]]:
        """Predicted tag strings for each sentence (long ones tagged piece by piece)."""
        return self.tag_sentences_both(cfg, model, data, words)[0]

    def tag_sentences_both(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: TaggingData,
        words: list[tuple[str, ...]],
    ) -> tuple[list[list[str]], list[list[str]] | None]:
        """Predicted tags of each sentence, and of the auxiliary column (None without one)."""
        dcfg: TaggingDataConfig = cfg.data
        blank = [TaggedSentence(w, ()) for w in words]
        pieces = self.pieces(blank, dcfg.max_length)
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i].words))
        predicted: list[list[str]] = [[] for _ in pieces]
        predicted_aux: list[list[str]] = [[] for _ in pieces]
        tagger = cast(Tagger, model)
        with_aux = tagger.aux_proj is not None  # built with one iff data.aux_tags is non-empty
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for start in range(0, len(order), dcfg.eval_batch_size):
                chosen = [i for i in order[start : start + dcfg.eval_batch_size] if pieces[i].words]
                if not chosen:
                    continue
                batch = self.make_batch(cfg, data, [pieces[i] for i in chosen])
                out, aux = tagger.predict_both(move_to(batch, module_device(model)))
                for row, i in enumerate(chosen):
                    n = len(pieces[i].words)
                    predicted[i] = [data.tags[k] for k in out[row, :n].tolist()]
                    if aux is not None:
                        predicted_aux[i] = [data.aux_tags[k] for k in aux[row, :n].tolist()]
        model.train(was_training)
        return (
            self._join(words, predicted, dcfg.max_length),
            self._join(words, predicted_aux, dcfg.max_length) if with_aux else None,
        )

    @staticmethod
    def _join(
        words: list[tuple[str, ...]], pieces: list[list[str]], max_length: int
    ) -> list[list[str]]:
        """Tags of each sentence from the tags of its consecutive pieces."""
        result: list[list[str]] = []
        cursor = 0
        for s in words:
            tags: list[str] = []
            for _ in range(max(1, -(-len(s) // max_length))):
                tags.extend(pieces[cursor])
                cursor += 1
            result.append(tags)
        return result

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: TaggingData, split: str
    ) -> dict[str, float]:
        return self._score(cfg, model, data, split)[0]

    def write_report(
        self, cfg: ExperimentConfig, model: nn.Module, data: TaggingData, split: str
    ) -> None:
        """Per-tag scores and the confusion counts of ``split``, for ``seqlab plot --kind
        confusion``."""
        side = self._score(cfg, model, data, split)[1]
        atomic_write_text(RunDir(data.run_dir).tag_predictions(split), json.dumps(side) + "\n")

    def _score(
        self, cfg: ExperimentConfig, model: nn.Module, data: TaggingData, split: str
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """The metrics of ``split`` and its per-tag report (labels, confusion, per_tag)."""
        dcfg: TaggingDataConfig = cfg.data
        sentences = data.splits[split]
        predicted, predicted_aux = self.tag_sentences_both(
            cfg, model, data, [s.words for s in sentences]
        )
        gold = [list(s.tags) for s in sentences]
        words = [w for s in sentences for w in s.words]
        flat_gold = [t for s in gold for t in s]
        flat_pred = [t for s in predicted for t in s]
        correct = np.array([g == p for g, p in zip(flat_gold, flat_pred, strict=True)])
        oov = np.array([self._key(dcfg, w) not in data.vocab for w in words])
        per_tag, confusion = tag_report(flat_gold, flat_pred, data.tags)
        metrics = {
            f"{split}_acc": 100.0 * float(correct.mean()),
            f"{split}_oov_acc": 100.0 * float(correct[oov].mean()) if oov.any() else 0.0,
            f"{split}_iv_acc": 100.0 * float(correct[~oov].mean()) if (~oov).any() else 0.0,
            f"{split}_oov_rate": 100.0 * float(oov.mean()),
            f"{split}_macro_f1": 100.0 * float(np.mean([r["f1"] for r in per_tag.values()])),
            f"{split}_unknown_tags": float(data.report[split]["unknown_tags"]),
            f"{split}_long_sentences": float(
                sum(len(s.words) > dcfg.max_length for s in sentences)
            ),
        }
        if predicted_aux is not None and any(s.aux for s in sentences):
            gold_aux = [t for s in sentences for t in s.aux]
            pred_aux = [t for s in predicted_aux for t in s]
            hits = [g == p for g, p in zip(gold_aux, pred_aux, strict=True)]
            metrics[f"{split}_aux_acc"] = 100.0 * float(np.mean(hits))
        if dcfg.scheme == "bio":
            from seqeval.metrics import f1_score

            metrics[f"{split}_span_f1"] = 100.0 * float(f1_score(gold, predicted))
        side = {"labels": confusion[0], "confusion": confusion[1], "per_tag": per_tag}
        return metrics, side

    # -- prediction ---------------------------------------------------------------------

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: TaggingData, lines: Iterable[str]
    ) -> Iterator[str]:
        """CoNLL-U in (its ``data.column`` is filled, every other column and comment kept) or
        raw text (one sentence per line, tokens split on whitespace) -> CoNLL-U out, with the
        ``# sent_id`` and ``# text`` comments UD's validator requires added where missing."""
        dcfg: TaggingDataConfig = cfg.data
        buffered = list(lines)
        first = next((line for line in buffered if line.strip()), "")
        if first.startswith("#") or first.count("\t") == 9:
            sentences = list(parse_conllu_lines(buffered))
            tokenlists = [s.tokenlist for s in sentences]
            words = [s.forms for s in sentences]
        else:
            words = [tuple(line.split()) for line in buffered if line.strip()]
            tokenlists = [_raw_tokenlist(w) for w in words]
        tagged, tagged_aux = self.tag_sentences_both(cfg, model, data, words)
        column = dcfg.column if dcfg.format == "conllu" else "upos"
        for n, (tokenlist, tags) in enumerate(zip(tokenlists, tagged, strict=True)):
            word_tokens = [tok for tok in tokenlist if isinstance(tok["id"], int)]
            for token, tag in zip(word_tokens, tags, strict=True):
                token[column] = tag
            if tagged_aux is not None:
                for token, tag in zip(word_tokens, tagged_aux[n], strict=True):
                    token[dcfg.aux_column] = tag
            add_ud_comments(tokenlist, sent_id=str(n + 1))
            yield tokenlist.serialize().rstrip("\n") + "\n"


def add_ud_comments(tokenlist: TokenList, sent_id: str) -> None:
    """Add ``# sent_id`` (after any ``# newdoc``/``# newpar``) and ``# text`` (after
    ``sent_id``) where ``tokenlist`` lacks them; the text is the surface tokens (multiword
    tokens, not their words), separated by a space unless ``SpaceAfter=No``."""
    items = list(tokenlist.metadata.items())
    keys = [key for key, _ in items]
    if "sent_id" not in keys:
        at = next((i for i, k in enumerate(keys) if not k.startswith(("newdoc", "newpar"))), None)
        items.insert(len(items) if at is None else at, ("sent_id", sent_id))
    if "text" not in keys:
        items.insert(
            [key for key, _ in items].index("sent_id") + 1, ("text", _surface_text(tokenlist))
        )
    tokenlist.metadata.clear()
    tokenlist.metadata.update(items)


def _surface_text(tokenlist: TokenList) -> str:
    pieces: list[str] = []
    covered = 0  # the last word id inside a multiword token already written
    for token in tokenlist:
        ident = token["id"]
        if isinstance(ident, tuple) and ident[1] == "-":
            covered = ident[2]
        elif not isinstance(ident, int) or ident <= covered:
            continue  # an empty node, or a word of a multiword token
        misc = token["misc"] or {}
        pieces.append(token["form"] + ("" if misc.get("SpaceAfter") == "No" else " "))
    return "".join(pieces).rstrip(" ")


def _raw_tokenlist(words: tuple[str, ...]) -> TokenList:
    empty = {k: None for k in ("lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")}
    return TokenList([Token({"id": i, "form": w, **empty}) for i, w in enumerate(words, 1)])


def tag_report(
    gold: Sequence[str], predicted: Sequence[str], tags: Sequence[str]
) -> tuple[dict[str, dict[str, float]], tuple[list[str], list[list[int]]]]:
    """Per-tag precision/recall/F1/support and the confusion matrix (rows gold, columns
    predicted) over the training tags plus any unknown gold tags."""
    labels = list(tags) + sorted(set(gold) - set(tags))
    index = {t: i for i, t in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g], index[p]] += 1
    per_tag: dict[str, dict[str, float]] = {}
    for i, tag in enumerate(labels):
        tp = float(matrix[i, i])
        predicted_n, gold_n = float(matrix[:, i].sum()), float(matrix[i].sum())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / gold_n if gold_n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_tag[tag] = {"precision": precision, "recall": recall, "f1": f1, "support": gold_n}
    return per_tag, (labels, cast(list[list[int]], matrix.tolist()))


def _load_vocabs(run_dir: Path) -> tuple[Vocab, Vocab, list[str], list[str]]:
    path = RunDir(run_dir).tags
    if not path.is_file():
        raise RunDirError(f"{path}: missing; is this a tagging run dir?")
    tags: list[str] = json.loads(path.read_text(encoding="utf-8"))
    aux_path = RunDir(run_dir).aux_tags
    aux: list[str] = json.loads(aux_path.read_text(encoding="utf-8")) if aux_path.is_file() else []
    return Vocab.load(RunDir(run_dir).vocab), Vocab.load(RunDir(run_dir).chars), tags, aux

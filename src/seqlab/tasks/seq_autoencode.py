"""Sequence autoencoding (task ``seq_autoencode``; Dai & Le, 2015): read a sentence with an
LSTM and write it back from the final state (``models/seq_autoencoder.py``).

Sentences come from ``dataset``: ``sst`` (the sentences of the treebank's train / dev /
test trees), ``rt_polarity`` (MR; the train / val / test split of the ``classify`` task
with the same ``split_seed`` and fractions, so an autoencoder trained here never read a
sentence a classifier is tested on), ``ptb`` (the train / valid / test files), or a text
file with one sentence per line (split by the fractions). Sentences longer than
``max_length`` words are left out (counted in ``data_report.json``).

Metrics: ``{split}_loss`` (per word, the final <eos> included) and ``{split}_ppl`` with
teacher forcing; greedy reconstruction (no teacher forcing): ``{split}_exact`` (percent
of sentences reproduced exactly) and ``{split}_token_acc`` (percent of source positions
whose word is reproduced at the same position). ``reconstruction_{split}.json`` holds both
by sentence length (``seqlab plot RUN --kind reconstruction``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, contract, move_to
from seqlab.data.batching import bucket_batches, pad_batch
from seqlab.data.readers import read_lines, read_trees
from seqlab.data.sources import resolve
from seqlab.data.vocab import BOS, EOS, PAD, UNK, Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.io import atomic_write_text
from seqlab.models.seq_autoencoder import SeqAEBatch, SeqAutoencoder, SeqAutoencoderConfig
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask, save_data_report
from seqlab.tasks.bow_classify import split_indices
from seqlab.tasks.sentence_classify import ClassifyDataConfig, load_flat
from seqlab.train.device import module_device


@dataclass(frozen=True)
class SeqAEDataConfig:
    dataset: str = "rt_polarity"
    """``sst``, ``rt_polarity`` (MR), ``ptb``, or a text file with one sentence per line."""
    lowercase: bool = True
    encoding: str = "cp1252"
    """MR's encoding (a text file is read as utf-8)."""
    max_length: int = 30
    """Sentences with more words are left out (counted in data_report.json)."""
    max_vocab: int = 20000
    """Vocabulary size with the 4 specials; rarer words are <unk>."""
    min_count: int = 1
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 1234
    length_bins: tuple[int, ...] = (5, 10, 15, 20, 25, 30)
    """Upper ends of the sentence-length bins of the reconstruction table."""
    eval_batch_size: int = 500

    def validate(self) -> None:
        if self.max_length < 1 or self.max_vocab <= 4:
            raise ConfigError("data.max_length must be >= 1 and data.max_vocab > 4")
        if list(self.length_bins) != sorted(set(self.length_bins)) or not self.length_bins:
            raise ConfigError("data.length_bins must be increasing upper bounds, e.g. [5, 10]")


@dataclass
class SeqAEData:
    vocab: Vocab
    splits: dict[str, list[list[str]]]
    report: dict[str, int]
    run_dir: Path


def build_seq_autoencoder(cfg: ExperimentConfig, data: SeqAEData) -> SeqAutoencoder:
    vocab = data.vocab
    return SeqAutoencoder(
        cfg.model, len(vocab), vocab.pad_index, vocab.index(BOS), vocab.index(EOS)
    )


SEQ_AE_MODELS: Registry[ModelSpec[SeqAEData]] = Registry("sequence autoencoder model")
SEQ_AE_MODELS.register("lstm", ModelSpec(SeqAutoencoderConfig, build_seq_autoencoder))


def load_sentences(dcfg: SeqAEDataConfig) -> dict[str, list[list[str]]]:
    """Tokenised sentences per split (whitespace tokens, as the ``classify`` task)."""
    if dcfg.dataset == "sst":
        roles = {"train": "train", "val": "dev", "test": "test"}
        return {s: [t.leaves() for t in read_trees(resolve("sst", r))] for s, r in roles.items()}
    if dcfg.dataset == "ptb":
        roles = {"train": "train", "val": "valid", "test": "test"}
        return {
            s: [line.split() for line in read_lines(resolve("ptb", r)) if line.strip()]
            for s, r in roles.items()
        }
    if dcfg.dataset == "rt_polarity":
        flat = ClassifyDataConfig(dataset="rt_polarity", encoding=dcfg.encoding)
        tokens, _ = load_flat(flat, {})
    else:
        path = resolve(dcfg.dataset)
        tokens = [line.split() for line in read_lines(path) if line.strip()]
        if not tokens:
            raise DataError(f"{path}: empty corpus (no sentences)")
    idx = split_indices(
        len(tokens), 1, None, dcfg.val_fraction, dcfg.test_fraction, dcfg.split_seed
    )
    return {s: [tokens[i] for i in ids] for s, ids in idx.items()}


def make_batch(vocab: Vocab, sentences: Sequence[Sequence[str]]) -> SeqAEBatch:
    """Encoder input w_1..w_T, decoder input <bos> w_1..w_T, target w_1..w_T <eos>."""
    ids = [vocab.encode(s) for s in sentences]
    bos, eos, pad = vocab.index(BOS), vocab.index(EOS), vocab.pad_index
    source = pad_batch(ids, pad)
    decoder_input = pad_batch([[bos, *row] for row in ids], pad).ids
    target = pad_batch([[*row, eos] for row in ids], pad).ids
    return SeqAEBatch(source, decoder_input, target)


def reconstruction_table(
    sources: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]], bins: Sequence[int]
) -> list[dict[str, float]]:
    """Per length bin (``(previous bound, bound]``): sentences, exact-match percent and
    token accuracy (percent of source positions reproduced at the same position)."""
    rows = []
    low = 0
    for high in bins:
        pairs = [(s, o) for s, o in zip(sources, outputs, strict=True) if low < len(s) <= high]
        words = sum(len(s) for s, _ in pairs)
        same = sum(sum(a == b for a, b in zip(s, o, strict=False)) for s, o in pairs)
        exact = sum(list(s) == list(o) for s, o in pairs)
        rows.append(
            {
                "min_length": low + 1,
                "max_length": high,
                "sentences": len(pairs),
                "exact": 100.0 * exact / len(pairs) if pairs else math.nan,
                "token_acc": 100.0 * same / words if words else math.nan,
            }
        )
        low = high
    return rows


class SeqAutoencodeTask(TrainedTask[SeqAEData]):
    name = "seq_autoencode"
    data_config = SeqAEDataConfig
    models = SEQ_AE_MODELS
    default_model = "lstm"

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> SeqAEData:
        dcfg: SeqAEDataConfig = cfg.data
        report: dict[str, int] = {}
        splits = {}
        for split, sentences in load_sentences(dcfg).items():
            if dcfg.lowercase:
                sentences = [[w.lower() for w in s] for s in sentences]
            kept = [s for s in sentences if 0 < len(s) <= dcfg.max_length]
            report[f"{split}_sentences"] = len(kept)
            report[f"{split}_longer_than_max_length_left_out"] = sum(
                len(s) > dcfg.max_length for s in sentences
            )
            if not kept:
                raise DataError(
                    f"{dcfg.dataset}: no {split} sentence of 1..{dcfg.max_length} words"
                )
            splits[split] = kept
        if train:
            counts = Counter(w for s in splits["train"] for w in s)
            vocab = Vocab.from_counter(counts, (PAD, UNK, BOS, EOS), dcfg.min_count, dcfg.max_vocab)
            vocab.save(RunDir(run_dir).vocab)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
        for split, sentences in splits.items():
            words = sum(len(s) for s in sentences)
            unknown = sum(w not in vocab for s in sentences for w in s)
            report[f"{split}_unk_per_mille"] = round(1000 * unknown / words)
        if train:  # a loaded run (eval, serve) leaves its run dir as it is
            save_data_report(run_dir, report)
        return SeqAEData(vocab, splits, report, run_dir)

    def train_batches(
        self, cfg: ExperimentConfig, data: SeqAEData, epoch: int
    ) -> Iterator[SeqAEBatch]:
        sentences = data.splits["train"]
        order = bucket_batches(
            [len(s) for s in sentences],
            cfg.trainer.batch_size,
            shuffle=True,
            seed=cfg.trainer.seed * 100_003 + epoch,
        )
        for chosen in order:
            yield make_batch(data.vocab, [sentences[i] for i in chosen])

    def _split_batches(
        self, cfg: ExperimentConfig, data: SeqAEData, split: str
    ) -> Iterator[SeqAEBatch]:
        sentences = data.splits[split]
        size = cfg.data.eval_batch_size
        for start in range(0, len(sentences), size):
            yield make_batch(data.vocab, sentences[start : start + size])

    def reconstruct(
        self, cfg: ExperimentConfig, model: nn.Module, data: SeqAEData, split: str
    ) -> tuple[list[list[int]], list[list[int]], float, int]:
        """(source ids, greedy reconstructions, summed teacher-forced loss, words)."""
        was_training = model.training
        model.eval()
        device = module_device(model)
        sources: list[list[int]] = []
        outputs: list[list[int]] = []
        loss_sum, n = 0.0, 0
        with torch.no_grad():
            for batch in self._split_batches(cfg, data, split):
                batch = move_to(batch, device)
                out = contract(model).loss(batch)
                loss_sum += float(out.loss) * out.n
                n += out.n
                outputs += contract(model).predict(batch)
                ids, lengths = batch.source.ids.tolist(), batch.source.lengths.tolist()
                sources += [row[:length] for row, length in zip(ids, lengths, strict=True)]
        model.train(was_training)
        return sources, outputs, loss_sum, n

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: SeqAEData, split: str
    ) -> dict[str, float]:
        sources, outputs, loss_sum, n = self.reconstruct(cfg, model, data, split)
        [overall] = reconstruction_table(sources, outputs, [cfg.data.max_length])
        return {
            f"{split}_loss": loss_sum / n,
            f"{split}_ppl": math.exp(loss_sum / n),
            f"{split}_exact": overall["exact"],
            f"{split}_token_acc": overall["token_acc"],
        }

    def write_report(
        self, cfg: ExperimentConfig, model: nn.Module, data: SeqAEData, split: str
    ) -> None:
        """Exact-match rate and token accuracy by sentence length, and the first 20
        reconstructions, into ``reconstruction_{split}.json``."""
        sources, outputs, _, _ = self.reconstruct(cfg, model, data, split)
        table = reconstruction_table(sources, outputs, cfg.data.length_bins)
        examples = [
            {"source": " ".join(data.vocab.decode(s)), "output": " ".join(data.vocab.decode(o))}
            for s, o in list(zip(sources, outputs, strict=True))[:20]
        ]
        payload = {"split": split, "bins": table, "examples": examples}
        path = RunDir(data.run_dir).reconstruction(split)
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: SeqAEData, lines: Iterable[str]
    ) -> Iterator[str]:
        """``reconstruction<TAB>sentence`` for each input line (whitespace tokens)."""
        for line in lines:
            text = line.rstrip("\n")
            tokens = (text.lower() if cfg.data.lowercase else text).split()
            if not tokens:
                yield f"\t{text}"
                continue
            batch = move_to(make_batch(data.vocab, [tokens]), module_device(model))
            [output] = contract(model).predict(batch)
            yield " ".join(data.vocab.decode(output)) + f"\t{text}"

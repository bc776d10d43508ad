"""Translation (task ``translate``): Multi30k (or any parallel files) with a recurrent
encoder-decoder, decoded by greedy or beam search, scored by BLEU.

Data: the dataset's ``train``, ``val`` and ``data.test_split`` files of the two languages
(``multi30k``: ``{split}.{lang}.gz``), aligned line by line. Tokens: SentencePiece pieces
trained on the training split (``spm_{lang}.model`` or ``spm_joint.model`` in the run dir)
or Moses words with a count cut-off (``data.tokenizer``); vocabularies ``vocab_{lang}.json``
(``vocab_joint.json``). Training pairs with an empty side or more than ``data.max_length``
tokens on either side are left out (counted in ``data_report.json``).

Metrics: ``{split}_loss`` (nats per target token, EOS included) and ``{split}_ppl`` by
teacher forcing; during training also ``val_bleu_greedy`` (sacreBLEU of greedy output),
which selects the checkpoint when ``eval.metric`` names it. The final metrics decode with
``data.beam_size`` / ``data.length_penalty`` and score the detokenised, cased output in
three conventions (:mod:`seqlab.tasks.mt_scores`): ``{split}_bleu``, ``{split}_chrf``,
``{split}_bleu_tok_lc``, ``{split}_bleu_moses``; the translations and the sacreBLEU
signatures go to ``translations_{split}.txt`` and ``bleu_{split}.json``.

Bad input: an empty source line translates to an empty line; a source longer than
``data.max_source_length`` tokens is cut (counted); characters the subword model never saw
become ``<unk>`` (counted); parallel files of different lengths are an error naming both
files and both counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
import torch
from rich.console import Console
from torch import nn

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, move_to
from seqlab.data.batching import Padded, bucket_batches, pad_batch
from seqlab.data.curriculum import CurriculumConfig, CurriculumSampler
from seqlab.data.parallel import SideTokenizer, TokenizerKind, train_subword_model
from seqlab.data.readers import read_parallel
from seqlab.data.sources import resolve
from seqlab.data.vocab import BOS, EOS, PAD, UNK, Vocab
from seqlab.decode import Decoded, beam_search_batch, greedy_batch, max_lengths
from seqlab.errors import ConfigError, DataError
from seqlab.io import atomic_write_text
from seqlab.models.seq2seq import Seq2Seq, Seq2SeqBatch, Seq2SeqConfig
from seqlab.models.transformer_seq2seq import TransformerSeq2Seq, TransformerSeq2SeqConfig
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask, finished_run_config, save_data_report
from seqlab.tasks.mt_scores import translation_scores
from seqlab.train.device import module_device

SPECIALS = (PAD, UNK, BOS, EOS)


@dataclass(frozen=True)
class TranslateDataConfig:
    dataset: str = "multi30k"
    source_lang: str = "de"
    target_lang: str = "en"
    val_split: str = "val"
    test_split: str = "test_2016_flickr"
    tokenizer: TokenizerKind = "sentencepiece"
    subword_type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = 8000
    """SentencePiece pieces per language (joint: in all)."""
    joint_vocab: bool = False
    """One subword model and vocabulary for both languages."""
    min_count: int = 2
    """Word level: words seen fewer times in training become ``<unk>``."""
    lowercase: bool = False
    max_length: int = 80
    """Training pairs with more tokens on either side are left out."""
    max_source_length: int = 250
    """At evaluation and prediction, longer sources are cut to this many tokens."""
    max_train_pairs: int | None = None
    """Use only the first N training pairs (quick experiments, tests)."""
    eval_batch_size: int = 64
    beam_size: int = 1
    """Decoding of the final metrics, ``seqlab eval`` and ``predict`` (1: greedy)."""
    length_penalty: float = 0.0
    """GNMT length penalty alpha of beam search (0: raw log probability)."""
    max_length_ratio: float = 1.5
    max_length_offset: int = 10
    """An output may take ``ratio * source tokens + offset`` steps."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """The order of the training pairs (:mod:`seqlab.data.curriculum`); scores ``length``
    (source + target tokens), ``source_length`` or ``lm_loss`` (mean NLL per target token
    under the finished translate run ``curriculum.run``, trained with the same vocabularies)."""

    def validate(self) -> None:
        self.curriculum.validate()
        if self.source_lang == self.target_lang:
            raise ConfigError("data.source_lang and data.target_lang must differ")
        if min(self.vocab_size, self.max_length, self.max_source_length) < 1:
            raise ConfigError("data.vocab_size, max_length, max_source_length must be >= 1")
        if self.beam_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("data.beam_size and data.eval_batch_size must be >= 1")


class Translator(Protocol):
    """What the task uses of a translation model (``seq2seq``, ``transformer``): the
    contract's loss, teacher-forced NLL, and ``seqlab.decode``'s StepDecodable after
    ``encode``."""

    def __call__(self, batch: Seq2SeqBatch) -> tuple[torch.Tensor, Any]: ...

    def encode(self, source: Padded) -> tuple[Any, Any, Any]: ...

    def token_nll(self, batch: Seq2SeqBatch) -> tuple[float, int]: ...

    def step(self, tokens: Any, state: Any, memory: Any, mask: Any) -> tuple[Any, Any, Any]: ...

    def select_state(self, state: Any, index: Any) -> Any: ...


def build_seq2seq(cfg: ExperimentConfig, data: TranslateData) -> Seq2Seq:
    return Seq2Seq(cfg.model, len(data.source_vocab), len(data.target_vocab), PAD_INDEX)


def build_transformer(cfg: ExperimentConfig, data: TranslateData) -> TransformerSeq2Seq:
    return TransformerSeq2Seq(cfg.model, len(data.source_vocab), len(data.target_vocab), PAD_INDEX)


TRANSLATE_MODELS: Registry[ModelSpec[TranslateData]] = Registry("translation model")
TRANSLATE_MODELS.register("seq2seq", ModelSpec(Seq2SeqConfig, build_seq2seq))
TRANSLATE_MODELS.register("transformer", ModelSpec(TransformerSeq2SeqConfig, build_transformer))

PAD_INDEX = SPECIALS.index(PAD)
BOS_INDEX = SPECIALS.index(BOS)
EOS_INDEX = SPECIALS.index(EOS)


@dataclass
class Split:
    source: list[list[int]]
    target: list[list[int]]
    source_text: list[str]
    target_text: list[str]


@dataclass
class TranslateData:
    source_tokenizer: SideTokenizer
    target_tokenizer: SideTokenizer
    source_vocab: Vocab
    target_vocab: Vocab
    splits: dict[str, Split]
    run_dir: Path
    report: dict[str, int] = field(default_factory=dict)
    # The last greedy decoding of a split, keyed by (split, weights fingerprint): the end of
    # training asks for the same greedy output up to four times (the checkpoint metric, the
    # last evaluation's final metrics, then evaluate and final_metrics of the best weights).
    greedy: dict[tuple[str, tuple[float, ...]], list[str]] = field(default_factory=dict)
    sampler: CurriculumSampler | None = None
    """The curriculum of the training pairs, made at the first training epoch."""


# --------------------------------------------------------------------------- reading


def split_files(dcfg: TranslateDataConfig, split: str) -> tuple[Path, Path]:
    """The (source, target) files of ``split`` of the configured dataset."""
    roles = {"train": "train", "val": dcfg.val_split, "test": dcfg.test_split}
    role = roles[split]
    return (
        resolve(dcfg.dataset, f"{role}.{dcfg.source_lang}"),
        resolve(dcfg.dataset, f"{role}.{dcfg.target_lang}"),
    )


def read_pairs(source: Path, target: Path) -> tuple[list[str], list[str]]:
    pairs = list(read_parallel(source, target))
    return [s for s, _ in pairs], [t for _, t in pairs]


def _tokenizers(
    dcfg: TranslateDataConfig, run_dir: Path, train_text: tuple[list[str], list[str]] | None
) -> tuple[SideTokenizer, SideTokenizer]:
    """The two sides' tokenizers; with ``train_text`` train the subword models first."""
    files = RunDir(run_dir)
    langs = (dcfg.source_lang, dcfg.target_lang)
    if dcfg.tokenizer == "word":
        return (
            SideTokenizer("word", langs[0], lowercase=dcfg.lowercase),
            SideTokenizer("word", langs[1], lowercase=dcfg.lowercase),
        )
    names = ("joint", "joint") if dcfg.joint_vocab else langs
    if train_text is not None:
        if dcfg.joint_vocab:
            texts = train_text[0] + train_text[1]
            train_subword_model(
                texts, files.subword_model("joint"), dcfg.vocab_size, dcfg.subword_type,
                dcfg.lowercase,
            )  # fmt: skip
        else:
            for name, texts in zip(names, train_text, strict=True):
                train_subword_model(
                    texts, files.subword_model(name), dcfg.vocab_size, dcfg.subword_type,
                    dcfg.lowercase,
                )  # fmt: skip
    sides = []
    for name, lang in zip(names, langs, strict=True):
        path = files.subword_model(name)
        if not path.is_file():
            raise DataError(f"{path}: missing; is this a translate run dir?")
        sides.append(SideTokenizer("sentencepiece", lang, path, dcfg.lowercase))
    return sides[0], sides[1]


def _vocab_names(dcfg: TranslateDataConfig) -> tuple[str, str]:
    return ("joint", "joint") if dcfg.joint_vocab else (dcfg.source_lang, dcfg.target_lang)


def encode_line(vocab: Vocab, tokens: Sequence[str]) -> tuple[list[int], int]:
    """Ids of ``tokens`` and how many are not in the vocabulary (-> ``<unk>``)."""
    unk = vocab.unk_index
    ids = [vocab.stoi.get(t, unk) for t in tokens]
    return ids, sum(1 for t in tokens if t not in vocab.stoi)


class TranslateTask(TrainedTask[TranslateData]):
    name = "translate"
    data_config = TranslateDataConfig
    models = TRANSLATE_MODELS
    default_model = "seq2seq"

    # ----------------------------------------------------------------------- data

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> TranslateData:
        dcfg: TranslateDataConfig = cfg.data
        texts = {split: read_pairs(*split_files(dcfg, split)) for split in ("train", "val", "test")}
        if dcfg.max_train_pairs is not None:
            texts["train"] = tuple(side[: dcfg.max_train_pairs] for side in texts["train"])  # type: ignore[assignment]
        src_tok, tgt_tok = _tokenizers(dcfg, run_dir, texts["train"] if train else None)
        files = RunDir(run_dir)
        names = _vocab_names(dcfg)
        train_tokens = (
            [src_tok.encode(t) for t in texts["train"][0]],
            [tgt_tok.encode(t) for t in texts["train"][1]],
        )
        if train:
            min_count = dcfg.min_count if dcfg.tokenizer == "word" else 1
            if dcfg.joint_vocab:
                joint = Vocab.build(train_tokens[0] + train_tokens[1], SPECIALS, min_count)
                vocabs = (joint, joint)
            else:
                vocabs = (
                    Vocab.build(train_tokens[0], SPECIALS, min_count),
                    Vocab.build(train_tokens[1], SPECIALS, min_count),
                )
            for name, vocab in zip(names, vocabs, strict=True):
                vocab.save(files.side_vocab(name))
        else:
            vocabs = (
                Vocab.load(files.side_vocab(names[0])),
                Vocab.load(files.side_vocab(names[1])),
            )
        report: dict[str, int] = {}
        data = TranslateData(src_tok, tgt_tok, vocabs[0], vocabs[1], {}, Path(run_dir), report)
        data.splits["train"] = self._train_split(dcfg, data, texts["train"], train_tokens)
        for split in ("val", "test"):
            data.splits[split] = self.encode_split(dcfg, data, *texts[split], split)
        report["source_vocab"], report["target_vocab"] = len(vocabs[0]), len(vocabs[1])
        if train:  # a loaded run (eval, serve) leaves its run dir as it is
            save_data_report(run_dir, report)
        return data

    def _train_split(
        self,
        dcfg: TranslateDataConfig,
        data: TranslateData,
        texts: tuple[list[str], list[str]],
        tokens: tuple[list[list[str]], list[list[str]]],
    ) -> Split:
        kept = Split([], [], [], [])
        empty = too_long = 0
        for src_text, tgt_text, src, tgt in zip(*texts, *tokens, strict=True):
            if not src or not tgt:
                empty += 1
                continue
            if max(len(src), len(tgt)) > dcfg.max_length:
                too_long += 1
                continue
            kept.source.append(encode_line(data.source_vocab, src)[0])
            kept.target.append(encode_line(data.target_vocab, tgt)[0])
            kept.source_text.append(src_text)
            kept.target_text.append(tgt_text)
        if not kept.source:
            raise DataError(f"dataset {dcfg.dataset!r}: no training pairs left")
        data.report.update(
            train_pairs=len(kept.source),
            train_empty_left_out=empty,
            train_too_long_left_out=too_long,
        )
        return kept

    def encode_split(
        self,
        dcfg: TranslateDataConfig,
        data: TranslateData,
        sources: list[str],
        targets: list[str],
        split: str,
    ) -> Split:
        """Every pair kept (a test set is scored whole); long sources cut, unknowns counted."""
        encoded = Split([], [], list(sources), list(targets))
        unknown = cut = 0
        for src_text, tgt_text in zip(sources, targets, strict=True):
            ids, oov = encode_line(data.source_vocab, data.source_tokenizer.encode(src_text))
            unknown += oov
            cut += len(ids) > dcfg.max_source_length
            encoded.source.append(ids[: dcfg.max_source_length])
            encoded.target.append(
                encode_line(data.target_vocab, data.target_tokenizer.encode(tgt_text))[0]
            )
        data.report.update(
            {
                f"{split}_pairs": len(sources),
                f"{split}_source_unknown_tokens": unknown,
                f"{split}_sources_cut": cut,
                f"{split}_empty_sources": sum(1 for s in encoded.source if not s),
            }
        )
        return encoded

    def setup_eval(
        self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None
    ) -> TranslateData:
        if data_path is not None:
            raise ConfigError(
                "translate runs evaluate on parallel files with --data SOURCE --ref REFERENCE"
            )
        return self.setup(cfg, run_dir, train=False)

    def splits(self, data: TranslateData) -> list[str]:
        """Training ends on ``val`` only: the beam is chosen on dev after training and the
        test split is decoded once, by ``seqlab eval RUN --split test``."""
        return ["val"]

    # ----------------------------------------------------------------------- batches

    def make_batch(
        self, source: Sequence[Sequence[int]], target: Sequence[Sequence[int]]
    ) -> Seq2SeqBatch:
        # an empty sequence is one <unk>, so that every source has a step
        src = pad_batch([s if s else [UNK_INDEX] for s in source], PAD_INDEX)
        target_in = pad_batch([[BOS_INDEX, *t] for t in target], PAD_INDEX).ids
        target_out = pad_batch([[*t, EOS_INDEX] for t in target], PAD_INDEX).ids
        return Seq2SeqBatch(src, target_in, target_out)

    def sorted_batches(
        self, source: list[list[int]], target: list[list[int]], size: int
    ) -> Iterator[tuple[list[int], Seq2SeqBatch]]:
        """Batches of ``size`` pairs in order of source length (evaluation, scoring), each
        with the indices of its pairs."""
        order = sorted(range(len(source)), key=lambda i: len(source[i]))
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            yield chosen, self.make_batch([source[i] for i in chosen], [target[i] for i in chosen])

    def train_batches(
        self, cfg: ExperimentConfig, data: TranslateData, epoch: int
    ) -> Iterator[Seq2SeqBatch]:
        train = data.splits["train"]
        if cfg.data.curriculum.schedule != "none":
            order = self.curriculum_sampler(cfg, data).epoch(epoch)
        else:
            lengths = [max(len(s), len(t)) for s, t in zip(train.source, train.target, strict=True)]
            order = bucket_batches(
                lengths,
                cfg.trainer.batch_size,
                shuffle=True,
                seed=cfg.trainer.seed * 100_003 + epoch,
            )
        for chosen in order:
            yield self.make_batch(
                [train.source[i] for i in chosen], [train.target[i] for i in chosen]
            )

    def curriculum_sampler(self, cfg: ExperimentConfig, data: TranslateData) -> CurriculumSampler:
        """The curriculum of ``data.curriculum`` over the training pairs (scored once), cut
        into this config's batches."""
        tcfg = cfg.trainer
        if data.sampler is None:
            ccfg: CurriculumConfig = cfg.data.curriculum
            train = data.splits["train"]
            if ccfg.score == "lm_loss":
                assert ccfg.run is not None  # CurriculumConfig.validate
                scores = self.scorer_losses(cfg, data, Path(ccfg.run))
            elif ccfg.score == "source_length":
                scores = [float(len(s)) for s in train.source]
            else:
                pairs = zip(train.source, train.target, strict=True)
                scores = [float(len(s) + len(t)) for s, t in pairs]
            data.sampler = CurriculumSampler(
                scores, ccfg, tcfg.batch_size, tcfg.seed, tcfg.accumulate
            )
        return data.sampler.sized(tcfg.batch_size, tcfg.accumulate)

    def scorer_losses(self, cfg: ExperimentConfig, data: TranslateData, run: Path) -> list[float]:
        """Mean NLL (nats per target token, EOS included) of each training pair under the
        best model of the finished translate run ``run``, whose vocabularies must be this
        run's (the pairs are scored as this run's token ids)."""
        key = "data.curriculum.run"
        scorer_cfg = finished_run_config(self, run, key, cfg.trainer.device)
        model, scored = self.load_trained(scorer_cfg, run)
        sides = (
            ("source", data.source_vocab, scored.source_vocab),
            ("target", data.target_vocab, scored.target_vocab),
        )
        for side, mine, theirs in sides:
            if mine.itos != theirs.itos:
                raise ConfigError(
                    f"{key}: {run} has another {side} vocabulary ({len(theirs)} entries, this "
                    f"run {len(mine)}); train the scorer with the same data.tokenizer, "
                    "vocab_size and training data"
                )
        train = data.splits["train"]
        translator = cast(Translator, model)
        device = module_device(model)
        losses = [0.0] * len(train.source)
        size = scorer_cfg.data.eval_batch_size
        with torch.no_grad():
            for chosen, batch in self.sorted_batches(train.source, train.target, size):
                batch = move_to(batch, device)
                logits = translator(batch)[0]  # (B, T, V)
                nll = torch.nn.functional.cross_entropy(
                    logits.float().transpose(1, 2), batch.target_out,
                    ignore_index=PAD_INDEX, reduction="none",
                )  # fmt: skip  # (B, T)
                tokens = (batch.target_out != PAD_INDEX).sum(1)  # (B,)
                for i, value in zip(chosen, (nll.sum(1) / tokens).tolist(), strict=True):
                    losses[i] = value
        return losses

    # ----------------------------------------------------------------------- evaluation

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: TranslateData, split: str
    ) -> dict[str, float]:
        """Loss and perplexity, then BLEU and chrF of the output of ``data.beam_size``
        (written to ``translations_{split}.txt``, signatures to ``bleu_{split}.json``)."""
        metrics = self.loss_metrics(cfg, model, data, split)
        part = data.splits[split]
        if cfg.data.beam_size == 1:
            hyps = self.greedy_text(cfg, model, data, split)
        else:
            hyps = self.translate_text(cfg, model, data, part.source)
        metrics.update(self.score(cfg, hyps, part.target_text, split, data.run_dir))
        return metrics

    def loss_metrics(
        self, cfg: ExperimentConfig, model: nn.Module, data: TranslateData, split: str
    ) -> dict[str, float]:
        """Teacher-forced loss (nats per target token) and perplexity on ``split``."""
        dcfg: TranslateDataConfig = cfg.data
        part = data.splits[split]
        seq2seq = cast(Translator, model)
        was_training = model.training
        model.eval()
        device = module_device(model)
        total, count = 0.0, 0
        with torch.no_grad():
            for _, batch in self.sorted_batches(part.source, part.target, dcfg.eval_batch_size):
                nll, n = seq2seq.token_nll(move_to(batch, device))
                total += nll
                count += n
        model.train(was_training)
        nats = total / count
        return {f"{split}_loss": nats, f"{split}_ppl": math.exp(min(nats, 700.0))}

    def evaluate_in_training(
        self, cfg: ExperimentConfig, model: nn.Module, data: TranslateData
    ) -> dict[str, float]:
        """Validation loss each evaluation; greedy BLEU too when it picks the checkpoint."""
        metrics = self.loss_metrics(cfg, model, data, "val")
        if cfg.eval.metric == "val_bleu_greedy":
            metrics.update(self.final_metrics(cfg, model, data, "val"))
        return metrics

    def final_metrics(
        self, cfg: ExperimentConfig, model: nn.Module, data: TranslateData, split: str
    ) -> dict[str, float]:
        """``{split}_bleu_greedy``: sacreBLEU of greedy output (the dev curve)."""
        hyps = self.greedy_text(cfg, model, data, split)
        scores, _ = translation_scores(hyps, data.splits[split].target_text, cfg.data.target_lang)
        return {f"{split}_bleu_greedy": scores["bleu"]}

    def greedy_text(
        self, cfg: ExperimentConfig, model: nn.Module, data: TranslateData, split: str
    ) -> list[str]:
        """Greedy output on ``split``, decoded once per set of weights."""
        with torch.no_grad():
            fingerprint = tuple(float(p.double().sum()) for p in model.parameters())
        key = (split, fingerprint)
        if key not in data.greedy:
            greedy = replace(cfg, data=replace(cfg.data, beam_size=1))
            hyps = self.translate_text(greedy, model, data, data.splits[split].source)
            data.greedy.clear()  # keep only the last decoding
            data.greedy[key] = hyps
        return data.greedy[key]

    def score(
        self,
        cfg: ExperimentConfig,
        hypotheses: list[str],
        references: list[str],
        split: str,
        run_dir: Path,
    ) -> dict[str, float]:
        dcfg: TranslateDataConfig = cfg.data
        scores, signatures = translation_scores(hypotheses, references, dcfg.target_lang)
        Console(stderr=True).print(
            f"{split}: sacreBLEU {scores['bleu']:.2f} ({signatures['bleu']}), chrF "
            f"{scores['chrf']:.2f} ({signatures['chrf']}); beam {dcfg.beam_size}, length "
            f"penalty {dcfg.length_penalty}",
            highlight=False,
            soft_wrap=True,
        )
        files = RunDir(run_dir)
        atomic_write_text(files.translations(split), "".join(h + "\n" for h in hypotheses))
        report = {
            "scores": scores,
            "signatures": signatures,
            "beam_size": dcfg.beam_size,
            "length_penalty": dcfg.length_penalty,
        }
        atomic_write_text(files.bleu_report(split), json.dumps(report, indent=2) + "\n")
        return {f"{split}_{name}": value for name, value in scores.items()}

    # ----------------------------------------------------------------------- decoding

    def translate_ids(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: TranslateData,
        sources: Sequence[Sequence[int]],
        limit: int | None = None,
    ) -> list[Decoded]:
        """The best output of each source (``data.beam_size`` 1: greedy), in order; an
        empty source gets an empty output without running the model. An output takes at
        most ``ratio * source tokens + offset`` steps (``data.max_length_*``), and at most
        ``limit`` when given (the service's cap)."""
        dcfg: TranslateDataConfig = cfg.data
        seq2seq = cast(Translator, model)
        was_training = model.training
        model.eval()
        device = module_device(model)
        results: list[Decoded | None] = [None] * len(sources)
        order = sorted(
            (i for i in range(len(sources)) if sources[i]), key=lambda i: -len(sources[i])
        )
        size = dcfg.eval_batch_size  # sources a batch (beam search: K rows each)
        with torch.no_grad():
            for start in range(0, len(order), size):
                chosen = order[start : start + size]
                src = move_to(pad_batch([list(sources[i]) for i in chosen], PAD_INDEX), device)
                memory, mask, state = seq2seq.encode(src)
                limits = max_lengths(
                    src.lengths.cpu(), dcfg.max_length_ratio, dcfg.max_length_offset, limit
                )
                if dcfg.beam_size == 1:
                    outputs = greedy_batch(
                        seq2seq,
                        state,
                        memory,
                        mask,
                        bos=BOS_INDEX,
                        eos=EOS_INDEX,
                        max_lengths=limits,
                    )
                else:
                    outputs = [
                        best[0]
                        for best in beam_search_batch(
                            seq2seq, state, memory, mask, bos=BOS_INDEX, eos=EOS_INDEX,
                            max_lengths=limits, beam_size=dcfg.beam_size,
                            length_penalty=dcfg.length_penalty,
                        )
                    ]  # fmt: skip
                for i, output in zip(chosen, outputs, strict=True):
                    results[i] = output
        model.train(was_training)
        empty = Decoded((), 0.0, 0.0, True, None)
        return [r if r is not None else empty for r in results]

    def translate_text(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: TranslateData,
        sources: Sequence[Sequence[int]],
    ) -> list[str]:
        """The detokenised best output of each source."""
        return [
            self.detokenise(data, d.tokens) for d in self.translate_ids(cfg, model, data, sources)
        ]

    def detokenise(self, data: TranslateData, ids: Sequence[int]) -> str:
        tokens = [data.target_vocab.itos[i] for i in ids if i >= len(SPECIALS) or i == UNK_INDEX]
        return data.target_tokenizer.decode(tokens)

    def encode_sources(
        self, cfg: ExperimentConfig, data: TranslateData, lines: Sequence[str]
    ) -> tuple[list[list[int]], int, int]:
        """Ids of each source line (cut to ``data.max_source_length``), the count of unknown
        tokens and of cut lines."""
        dcfg: TranslateDataConfig = cfg.data
        ids, unknown, cut = [], 0, 0
        for line in lines:
            line_ids, oov = encode_line(data.source_vocab, data.source_tokenizer.encode(line))
            unknown += oov
            cut += len(line_ids) > dcfg.max_source_length
            ids.append(line_ids[: dcfg.max_source_length])
        return ids, unknown, cut

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: TranslateData, lines: Iterable[str]
    ) -> Iterator[str]:
        """One translation per input line, streamed a batch of lines at a time."""
        dcfg: TranslateDataConfig = cfg.data
        chunk = max(dcfg.eval_batch_size, 1)
        stream = iter(lines)
        unknown = cut = 0
        while block := list(islice(stream, chunk)):
            ids, oov, long = self.encode_sources(cfg, data, [b.rstrip("\n") for b in block])
            unknown += oov
            cut += long
            for output in self.translate_ids(cfg, model, data, ids):
                yield self.detokenise(data, output.tokens)
        if unknown or cut:
            Console(stderr=True).print(
                f"predict: {unknown} source tokens not in the vocabulary (read as <unk>), "
                f"{cut} sources cut to data.max_source_length={dcfg.max_source_length} tokens",
                highlight=False,
                soft_wrap=True,
            )

    def align(
        self, cfg: ExperimentConfig, model: nn.Module, data: TranslateData, text: str
    ) -> tuple[list[str], list[str], np.ndarray | None, str]:
        """The source tokens of ``text``, the output tokens (``</s>`` last when it ended),
        the attention weights (output steps, source tokens) and the translation."""
        tokens = data.source_tokenizer.encode(text)[: cfg.data.max_source_length]
        if not tokens:
            raise DataError("the text to translate is empty")
        ids, _ = encode_line(data.source_vocab, tokens)
        [output] = self.translate_ids(cfg, model, data, [ids])
        target = [data.target_vocab.itos[i] for i in output.tokens]
        if output.finished:
            target.append("</s>")
        weights = None if output.attention is None else output.attention.numpy()
        return tokens, target, weights, self.detokenise(data, output.tokens)

    def evaluate_parallel(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: TranslateData,
        source: Path,
        reference: Path,
    ) -> dict[str, float]:
        """Translate ``source`` and score it against ``reference`` (``seqlab eval --data
        SOURCE --ref REFERENCE``); also teacher-forced loss and perplexity."""
        sources, references = read_pairs(source, reference)
        if not sources:
            raise DataError(f"{source}: no lines to translate")
        part = self.encode_split(cfg.data, data, sources, references, "file")
        data.splits["file"] = part
        return self.evaluate(cfg, model, data, "file")


UNK_INDEX = SPECIALS.index(UNK)

"""Language models on a token stream: word level (PTB) or character level.

Models (``model.name``): ``rnn`` (RNN/GRU/LSTM, state carried between BPTT windows) and
``transformer`` (decoder-only, each window is its whole context). Both take
``(inputs, state) -> (logits, state)`` and follow the decoding protocol, so evaluation and
``seqlab generate`` never ask which one they have.

Word level (``data.level: word``): each line is a sentence; ``<eos>`` is appended and
predicted, as in Mikolov's PTB setup. The vocabulary is the training words (PTB already
maps rare words to ``<unk>``); at evaluation, a word outside it becomes ``<unk>`` and the
count of such words is reported (``{split}_oov``). Character level (``data.level: char``):
the vocabulary is the training characters and an unknown character is an error.

Splits: a dataset with train/valid/test files (PTB) uses them; a single file (tiny
Shakespeare) is cut like nanoGPT's char baseline: the first ``1 - val_fraction`` trains,
the rest validates. Metrics: ``{split}_loss`` (nats/token), ``{split}_ppl`` and, at
character level, ``{split}_bpc``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import ExperimentConfig
from seqlab.contract import Decodable, ModelSpec, move_to
from seqlab.data.batching import BPTTStream
from seqlab.data.catalogue import DATASETS
from seqlab.data.readers import read_lines, read_text
from seqlab.data.sources import resolve
from seqlab.data.vocab import EOS, UNK, Vocab
from seqlab.decode import beam_search, sample
from seqlab.errors import ConfigError, DataError
from seqlab.models.rnn_lm import RNNLM, LMBatch, RNNLMConfig, detach
from seqlab.models.transformer_lm import TransformerLM, TransformerLMConfig
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask
from seqlab.train.device import module_device


@dataclass(frozen=True)
class RNNLMDataConfig:
    dataset: str = "ptb"
    """A dataset with train/valid/test roles (``ptb``, ``wikitext2``) or one text file."""
    level: Literal["word", "char"] = "word"
    bptt: int = 35
    variable_bptt: bool = False
    eval_batch_size: int = 10
    val_fraction: float = 0.1
    """For single-file datasets: the last fraction validates."""
    max_tokens: int | None = None
    """Use only the first N training tokens (quick experiments)."""
    max_vocab: int | None = None
    """Word level: keep the most frequent training words, this many entries with ``<unk>``
    and ``<eos>`` (the rest read as ``<unk>``, counted in ``{split}_oov``); None: every
    training word (PTB is already cut to 10k)."""
    random_offset: bool = False
    """Start each epoch's training windows at a random offset in [0, bptt) (seeded), so
    window boundaries move between epochs (for models without state between windows)."""
    eval_block_size: int = 0
    """Also report ``{split}_block_loss``: the mean loss over the split cut into
    non-overlapping blocks of this many targets, each read from a fresh state, as nanoGPT's
    ``estimate_loss`` averages random blocks of ``block_size`` (0: off)."""

    def validate(self) -> None:
        if self.bptt < 1 or self.eval_batch_size < 1:
            raise ConfigError("data.bptt and data.eval_batch_size must be at least 1")
        if self.eval_block_size < 0:
            raise ConfigError("data.eval_block_size must be >= 0 (0: off)")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError("data.val_fraction must be in (0, 0.5)")
        if self.max_vocab is not None and (self.level == "char" or self.max_vocab < 3):
            raise ConfigError(
                "data.max_vocab needs data.level: word and at least 3 entries "
                f"(<unk>, <eos> and a word), got {self.max_vocab} at level {self.level}"
            )


RNN_LM_MODELS: Registry[ModelSpec[LMData]] = Registry("language model")
RNN_LM_MODELS.register(
    "rnn", ModelSpec(RNNLMConfig, lambda cfg, data: RNNLM(len(data.vocab), cfg.model))
)
RNN_LM_MODELS.register(
    "transformer",
    ModelSpec(TransformerLMConfig, lambda cfg, data: TransformerLM(len(data.vocab), cfg.model)),
)


@dataclass
class LMData:
    vocab: Vocab
    level: str
    splits: dict[str, torch.Tensor]
    """split -> (N,) token ids of the whole split as one stream."""
    oov: dict[str, int] = field(default_factory=dict)
    """split -> tokens outside the vocabulary (mapped to <unk>)."""


def _split_files(dataset: str) -> dict[str, Path] | None:
    if dataset in DATASETS:
        spec = DATASETS.get(dataset)
        if {"train", "valid", "test"} <= set(spec.files):
            return {
                "train": resolve(dataset, "train"),
                "val": resolve(dataset, "valid"),
                "test": resolve(dataset, "test"),
            }
    return None


def word_stream(path: Path) -> list[str]:
    """Words of every line, each line followed by ``<eos>``."""
    tokens: list[str] = []
    for line in read_lines(path):
        words = line.split()
        if words:
            tokens.extend(words)
            tokens.append(EOS)
    if not tokens:
        raise DataError(f"{path}: empty corpus (no words)")
    return tokens


def encode_stream(
    vocab: Vocab, tokens: list[str], level: str, source: str
) -> tuple[torch.Tensor, int]:
    """Ids of ``tokens`` and how many were out of vocabulary (word level -> <unk>)."""
    if level == "char":
        unknown = sorted(set(tokens) - set(vocab.stoi))
        if unknown:
            raise DataError(
                f"{source}: characters {''.join(unknown)!r} are not in the model's vocabulary "
                f"of {len(vocab)} characters"
            )
        return torch.tensor([vocab.stoi[c] for c in tokens], dtype=torch.long), 0
    unk = vocab.unk_index
    ids = [vocab.stoi.get(t, unk) for t in tokens]
    oov = sum(1 for t in tokens if t not in vocab.stoi)
    return torch.tensor(ids, dtype=torch.long), oov


class RNNLMTask(TrainedTask[LMData]):
    name = "lm_rnn"
    data_config = RNNLMDataConfig
    models = RNN_LM_MODELS
    default_model = "rnn"

    def _read(self, cfg: ExperimentConfig) -> dict[str, list[str]]:
        dcfg: RNNLMDataConfig = cfg.data
        files = _split_files(dcfg.dataset)
        if files is not None:
            if dcfg.level == "char":
                return {s: list(read_text(p)) for s, p in files.items()}
            return {s: word_stream(p) for s, p in files.items()}
        path = resolve(dcfg.dataset)
        tokens = list(read_text(path)) if dcfg.level == "char" else word_stream(path)
        cut = int(len(tokens) * (1 - dcfg.val_fraction))
        return {"train": tokens[:cut], "val": tokens[cut:]}

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> LMData:
        dcfg: RNNLMDataConfig = cfg.data
        streams = self._read(cfg)
        if dcfg.max_tokens is not None:
            streams["train"] = streams["train"][: dcfg.max_tokens]
        if train:
            specials = () if dcfg.level == "char" else (UNK, EOS)
            vocab = Vocab.build([streams["train"]], specials=specials, max_size=dcfg.max_vocab)
            vocab.save(RunDir(run_dir).vocab)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
        data = LMData(vocab, dcfg.level, {})
        for split, tokens in streams.items():
            data.splits[split], data.oov[split] = encode_stream(
                vocab, tokens, dcfg.level, f"{dcfg.dataset} ({split})"
            )
        return data

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> LMData:
        if data_path is None:
            return self.setup(cfg, run_dir, train=False)
        dcfg: RNNLMDataConfig = cfg.data
        vocab = Vocab.load(RunDir(run_dir).vocab)
        path = Path(data_path)
        tokens = list(read_text(path)) if dcfg.level == "char" else word_stream(path)
        ids, oov = encode_stream(vocab, tokens, dcfg.level, data_path)
        return LMData(vocab, dcfg.level, {"test": ids}, {"test": oov})

    def splits(self, data: LMData) -> list[str]:
        return [s for s in ("val", "test") if s in data.splits]

    def train_batches(self, cfg: ExperimentConfig, data: LMData, epoch: int) -> Iterator[LMBatch]:
        dcfg: RNNLMDataConfig = cfg.data
        ids = data.splits["train"]
        if dcfg.random_offset:
            ids = ids[random.Random(f"{cfg.trainer.seed}:offset:{epoch}").randrange(dcfg.bptt) :]
        stream = BPTTStream(
            ids,
            cfg.trainer.batch_size,
            dcfg.bptt,
            dcfg.variable_bptt,
            seed=cfg.trainer.seed,
        )
        stream.set_epoch(epoch)
        for index, (inputs, targets) in enumerate(stream):
            yield LMBatch(inputs, targets, reset=index == 0)

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: LMData, split: str
    ) -> dict[str, float]:
        dcfg: RNNLMDataConfig = cfg.data
        ids = data.splits[split]
        batch_size = max(1, min(dcfg.eval_batch_size, ids.numel() // (dcfg.bptt + 1)))
        stream = BPTTStream(ids, batch_size, min(dcfg.bptt, ids.numel() // batch_size - 1))
        was_training = model.training
        model.eval()
        device = module_device(model)
        total, count, state = 0.0, 0, None
        with torch.no_grad():
            for inputs, targets in stream:
                inputs, targets = move_to((inputs, targets), device)
                logits, state = model(inputs, state)
                state = detach(state)
                total += float(
                    F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
                )
                count += targets.numel()
        model.train(was_training)
        nats = total / count
        result = {f"{split}_loss": nats, f"{split}_ppl": math.exp(min(nats, 700.0))}
        if data.level == "char":
            result[f"{split}_bpc"] = nats / math.log(2)
        if dcfg.eval_block_size:
            result[f"{split}_block_loss"] = block_loss(
                model, ids, dcfg.eval_block_size, dcfg.eval_batch_size
            )
        elif data.oov.get(split):
            result[f"{split}_oov"] = float(data.oov[split])
        return result

    def generate(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: LMData,
        *,
        prompt: str = "",
        max_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        beam: int = 0,
        **_: Any,
    ) -> Iterator[str]:
        if beam > 0:
            eos = None if data.level == "char" else data.vocab.stoi[EOS]
            ids = move_to(prompt_ids(data, prompt), module_device(model))
            best = beam_search(decodable(model), ids, max_tokens, beam_size=beam, eos=eos)[0]
            yield prompt
            yield from (token_text(data, i) for i in best.tokens)
            return
        yield from generate_stream(
            model,
            data,
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )


def decodable(model: nn.Module) -> Decodable:
    """Every model of ``RNN_LM_MODELS`` follows the decoding protocol."""
    return cast(Decodable, model)


@torch.no_grad()
def block_loss(model: nn.Module, ids: torch.Tensor, block_size: int, batch_size: int) -> float:
    """Mean loss (nats/token) over ``ids`` (N,) cut into non-overlapping blocks of
    ``block_size`` targets, every block read from a fresh state (no context before it).

    nanoGPT's ``estimate_loss`` averages the loss of random blocks the same way; tiling
    gives the same expectation without sampling noise.
    """
    blocks = (ids.numel() - 1) // block_size
    if blocks < 1:
        raise DataError(f"a split of {ids.numel()} tokens has no block of {block_size + 1}")
    inputs = ids[: blocks * block_size].view(blocks, block_size)  # (N_blocks, T)
    targets = ids[1 : blocks * block_size + 1].view(blocks, block_size)
    was_training = model.training
    model.eval()
    device = module_device(model)
    total = 0.0
    for start in range(0, blocks, batch_size):
        x, y = move_to(
            (inputs[start : start + batch_size], targets[start : start + batch_size]), device
        )
        logits, _ = model(x)
        total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
    model.train(was_training)
    return total / targets.numel()


def prompt_ids(data: LMData, prompt: str) -> torch.Tensor:
    """(1, T) ids of the prompt; an empty word-level prompt starts after ``<eos>``."""
    if data.level == "char":
        tokens: list[str] = list(prompt) or ["\n"]
        ids, _ = encode_stream(data.vocab, tokens, "char", "the prompt")
    else:
        ids, _ = encode_stream(data.vocab, prompt.split() or [EOS], "word", "the prompt")
    return ids.unsqueeze(0)


def generate_stream(
    model: nn.Module,
    data: LMData,
    *,
    prompt: str,
    max_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    seed: int,
) -> Iterator[str]:
    """Yield the prompt, then each generated token as text (streaming)."""
    generator = torch.Generator().manual_seed(seed)
    yield prompt
    for i in sample(
        decodable(model),
        move_to(prompt_ids(data, prompt), module_device(model)),
        max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=generator,
    ):
        yield token_text(data, i)


def token_text(data: LMData, index: int) -> str:
    token = data.vocab.itos[index]
    if data.level == "char":
        return token
    return "\n" if token == EOS else f" {token}"

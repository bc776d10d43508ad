"""Speech recognition of spoken digit strings (task ``speech``): FSDD utterances, LAS.

Utterances of 1-7 digits are composed from one speaker's FSDD recordings (see
:mod:`seqlab.data.fsdd`): the training utterances afresh each epoch (seeded by
``trainer.seed`` and the epoch, so a resumed run sees the same ones), the validation and
test utterances once, from ``data.split_seed``, only from their own recordings (test:
FSDD's indices 0-4; validation: ``data.val_indices`` out of the training indices).

Metrics: ``{split}_der``, the digit error rate (edit distance between the output and the
reference digit strings, summed, over the reference digits, in %), and ``{split}_acc``,
the share of utterances transcribed exactly (%). ``seqlab predict RUN_DIR a.wav b.wav``
transcribes wav files of any sample rate and channel count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, contract, move_to
from seqlab.data.audio import read_wav
from seqlab.data.batching import bucket_batches, pad_batch
from seqlab.data.features import LogMel, LogMelConfig
from seqlab.data.fsdd import (
    AudioBank,
    ComposeConfig,
    Utterance,
    compose,
    list_recordings,
    split_recordings,
)
from seqlab.data.sources import resolve
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.io import atomic_write_text
from seqlab.metrics import error_rate
from seqlab.models.las import EOS, LAS, LASConfig, SpeechBatch
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask
from seqlab.train.device import module_device

CHARS = ["<pad>", "<s>", "</s>", *"0123456789"]
"""Output characters: ids 0/1/2 are <pad>/<s>/</s>, then the ten digits."""


@dataclass(frozen=True)
class SpeechDataConfig:
    dataset: str = "fsdd"
    """``fsdd`` (found on the data search path) or a folder holding FSDD's recordings/."""
    val_indices: tuple[int, ...] = (5, 6, 7, 8, 9)
    """Recording indices held out of training for validation (never 0-4: FSDD's test)."""
    train_utterances: int = 2000
    """Training utterances composed afresh each epoch."""
    val_utterances: int = 300
    test_utterances: int = 500
    curriculum: tuple[int, ...] = ()
    """The most digits of a training utterance in the first, second, ... epoch (then
    ``compose.max_digits``): short utterances first let the speller learn to attend
    before it must move along 7 digits."""
    split_seed: int = 1234
    """Seed of the validation and test utterances (the same for every trainer.seed)."""
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    features: LogMelConfig = field(default_factory=LogMelConfig)
    eval_batch_size: int = 100

    def validate(self) -> None:
        if min(self.train_utterances, self.val_utterances, self.test_utterances) < 1:
            raise ConfigError("data.*_utterances must be >= 1")
        if not 1 <= self.compose.min_digits <= self.compose.max_digits:
            raise ConfigError("data.compose: need 1 <= min_digits <= max_digits")
        if not 0 <= self.compose.min_gap <= self.compose.max_gap:
            raise ConfigError("data.compose: need 0 <= min_gap <= max_gap")
        if any(not 1 <= n <= self.compose.max_digits for n in self.curriculum):
            raise ConfigError("data.curriculum: each entry must be in 1..compose.max_digits")
        self.features.validate()


SPEECH_MODELS: Registry[ModelSpec[SpeechData]] = Registry("speech model")
SPEECH_MODELS.register(
    "las",
    ModelSpec(
        LASConfig,
        lambda cfg, data: LAS(cfg.model, cfg.data.features.n_mels, len(data.chars)),
    ),
)


@dataclass
class SpeechData:
    chars: list[str]
    logmel: LogMel
    bank: AudioBank
    train_recordings: list[Any]
    splits: dict[str, list[Utterance]]
    features: dict[str, list[Tensor]]
    """The validation and test utterances' log-mel frames, computed once."""


def save_chars(run_dir: Path, chars: list[str]) -> None:
    atomic_write_text(RunDir(run_dir).chars, json.dumps(chars))


def load_chars(run_dir: Path) -> list[str]:
    path = RunDir(run_dir).chars
    if not path.is_file():
        raise RunDirError(f"{path}: missing; is this a speech run dir?")
    chars: list[str] = json.loads(path.read_text(encoding="utf-8"))
    return chars


def make_batch(frames: Sequence[Tensor], texts: Sequence[str], chars: list[str]) -> SpeechBatch:
    """Frames [(T_b, F)] zero-padded to (B, T, F); targets the characters then </s>."""
    index = {c: i for i, c in enumerate(chars)}
    lengths = torch.tensor([f.size(0) for f in frames], dtype=torch.long)
    padded = torch.nn.utils.rnn.pad_sequence(list(frames), batch_first=True)  # (B, T, F)
    targets = pad_batch([[index[c] for c in text] + [EOS] for text in texts], 0)
    return SpeechBatch(padded, lengths, targets)


class SpeechTask(TrainedTask[SpeechData]):
    name = "speech"
    data_config = SpeechDataConfig
    models = SPEECH_MODELS
    default_model = "las"
    predict_inputs = "files"

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> SpeechData:
        dcfg: SpeechDataConfig = cfg.data
        if train:
            save_chars(run_dir, CHARS)
        chars = load_chars(run_dir)
        logmel = LogMel(dcfg.features)
        bank = AudioBank(dcfg.features.rate)
        folder = resolve(dcfg.dataset)
        folder = folder / "recordings" if (folder / "recordings").is_dir() else folder
        recordings = split_recordings(list_recordings(folder), dcfg.val_indices)
        for split, found in recordings.items():
            if not found:
                raise DataError(f"{folder}: no {split} recordings")
        splits = {
            "val": compose(recordings["val"], dcfg.val_utterances, dcfg.compose, dcfg.split_seed),
            "test": compose(
                recordings["test"], dcfg.test_utterances, dcfg.compose, dcfg.split_seed + 1
            ),
        }
        features = {
            split: [logmel(bank.render(u)) for u in utterances]
            for split, utterances in splits.items()
        }
        return SpeechData(chars, logmel, bank, recordings["train"], splits, features)

    def train_batches(
        self, cfg: ExperimentConfig, data: SpeechData, epoch: int
    ) -> Iterator[SpeechBatch]:
        dcfg: SpeechDataConfig = cfg.data
        seed = cfg.trainer.seed * 100_003 + epoch
        compose_cfg = dcfg.compose
        if epoch < len(dcfg.curriculum):  # the trainer counts epochs from 0
            most = dcfg.curriculum[epoch]
            compose_cfg = replace(
                compose_cfg, max_digits=most, min_digits=min(most, compose_cfg.min_digits)
            )
        utterances = compose(data.train_recordings, dcfg.train_utterances, compose_cfg, seed)
        samples = [data.bank.render(u) for u in utterances]
        order = bucket_batches([len(s) for s in samples], cfg.trainer.batch_size, True, seed)
        for chosen in order:
            frames = [data.logmel(samples[i]) for i in chosen]
            yield make_batch(frames, [utterances[i].text for i in chosen], data.chars)

    def transcribe(
        self, cfg: ExperimentConfig, model: nn.Module, data: SpeechData, frames: list[Tensor]
    ) -> list[str]:
        """The model's output string for each utterance's frames."""
        dcfg: SpeechDataConfig = cfg.data
        device = module_device(model)
        texts: list[str] = []
        for start in range(0, len(frames), dcfg.eval_batch_size):
            chunk = frames[start : start + dcfg.eval_batch_size]
            batch = move_to(make_batch(chunk, [""] * len(chunk), data.chars), device)
            for ids in contract(model).predict(batch):
                texts.append("".join(data.chars[i] for i in ids if i > EOS))
        return texts

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: SpeechData, split: str
    ) -> dict[str, float]:
        dcfg: SpeechDataConfig = cfg.data
        utterances, frames = data.splits[split], data.features[split]
        references = [u.text for u in utterances]
        was_training = model.training
        model.eval()
        device = module_device(model)
        loss_sum, tokens = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(frames), dcfg.eval_batch_size):
                end = start + dcfg.eval_batch_size
                batch = move_to(
                    make_batch(frames[start:end], references[start:end], data.chars), device
                )
                out = contract(model).loss(batch)
                loss_sum += float(out.loss) * out.n
                tokens += out.n
            hypotheses = self.transcribe(cfg, model, data, frames)
        model.train(was_training)
        exact = sum(h == r for h, r in zip(hypotheses, references, strict=True))
        return {
            f"{split}_loss": loss_sum / tokens,
            f"{split}_der": 100.0 * error_rate(hypotheses, references),
            f"{split}_acc": 100.0 * exact / len(references),
        }

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: SpeechData, lines: Iterable[str]
    ) -> Iterator[str]:
        """``digits<TAB>path`` for each wav file (any sample rate; stereo is mixed down)."""
        for line in lines:
            path = line.strip()
            samples = read_wav(path, data.logmel.cfg.rate)
            [text] = self.transcribe(cfg, model, data, [data.logmel(samples)])
            yield f"{text}\t{path}"

    def alignment(
        self, cfg: ExperimentConfig, model: nn.Module, data: SpeechData, samples: np.ndarray
    ) -> tuple[Tensor, list[str], Tensor]:
        """For one utterance: its log-mel frames (T, F), the output characters then </s>
        (S labels) and the attention weights of each output step (S, K)."""
        frames = data.logmel(samples)
        batch = move_to(make_batch([frames], [""], data.chars), module_device(model))
        [decoded] = model.decode(batch)  # type: ignore[operator]
        labels = [data.chars[i] for i in decoded.tokens] + (["</s>"] if decoded.finished else [])
        return frames, labels, decoded.attention

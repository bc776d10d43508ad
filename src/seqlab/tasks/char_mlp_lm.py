"""Fixed-window character language model on a text file (tiny Shakespeare by default).

The text is split like nanoGPT's char baseline: the first ``1 - val_fraction`` of the
characters train, the rest validate. The vocabulary is the set of characters of the
training part; a character outside it (in a prompt or a ``--data`` file) is an error.
Metrics are in nats per character (``val_loss``) and bits per character (``val_bpc``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, move_to
from seqlab.data.readers import read_text
from seqlab.data.sources import resolve
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.char_mlp_lm import CharMLPConfig, CharMLPLM, WindowBatch
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask
from seqlab.train.device import module_device


@dataclass(frozen=True)
class CharLMDataConfig:
    dataset: str = "tinyshakespeare"
    val_fraction: float = 0.1
    max_chars: int | None = None
    """Use only the first N characters (quick experiments)."""

    def validate(self) -> None:
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError("data.val_fraction must be in (0, 0.5)")


CHAR_MLP_MODELS: Registry[ModelSpec[CharLMData]] = Registry("char LM model")
CHAR_MLP_MODELS.register(
    "mlp", ModelSpec(CharMLPConfig, lambda cfg, data: CharMLPLM(len(data.vocab), cfg.model))
)


@dataclass
class CharLMData:
    vocab: Vocab
    splits: dict[str, torch.Tensor]
    """split -> (N,) character ids"""


def encode_chars(vocab: Vocab, text: str, source: str) -> torch.Tensor:
    unknown = sorted(set(text) - set(vocab.stoi))
    if unknown:
        raise DataError(
            f"{source}: characters {''.join(unknown)!r} are not in the model's vocabulary "
            f"of {len(vocab)} characters"
        )
    return torch.tensor([vocab.stoi[c] for c in text], dtype=torch.long)


class CharMLPLMTask(TrainedTask[CharLMData]):
    name = "lm_char_mlp"
    data_config = CharLMDataConfig
    models = CHAR_MLP_MODELS
    default_model = "mlp"

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> CharLMData:
        dcfg: CharLMDataConfig = cfg.data
        path = resolve(dcfg.dataset)
        text = read_text(path)
        if dcfg.max_chars is not None:
            text = text[: dcfg.max_chars]
        cut = int(len(text) * (1 - dcfg.val_fraction))
        context = cfg.model.context
        if cut <= context + 1 or len(text) - cut <= context + 1:
            raise DataError(
                f"{path}: corpus of {len(text)} characters is too short for a window of {context}"
            )
        if train:
            vocab = Vocab.build([text[:cut]], specials=())
            vocab.save(RunDir(run_dir).vocab)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
        train_ids = encode_chars(vocab, text[:cut], str(path))
        val_ids = encode_chars(vocab, text[cut:], str(path))
        return CharLMData(vocab, {"train": train_ids, "val": val_ids})

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> CharLMData:
        if data_path is None:
            return self.setup(cfg, run_dir, train=False)
        vocab = Vocab.load(RunDir(run_dir).vocab)
        text = read_text(Path(data_path))
        ids = encode_chars(vocab, text, data_path)
        if len(ids) <= cfg.model.context:
            raise DataError(f"{data_path}: shorter than the model's window of {cfg.model.context}")
        return CharLMData(vocab, {"val": ids, "test": ids})

    def splits(self, data: CharLMData) -> list[str]:
        return ["val"]

    def train_batches(
        self, cfg: ExperimentConfig, data: CharLMData, epoch: int
    ) -> Iterator[WindowBatch]:
        windows = data.splits["train"].unfold(0, cfg.model.context + 1, 1)  # (N-n, n+1)
        order = torch.from_numpy(
            np.random.default_rng([cfg.trainer.seed, epoch]).permutation(len(windows))
        )
        size = cfg.trainer.batch_size
        for start in range(0, len(order), size):
            chosen = windows[order[start : start + size]]
            yield WindowBatch(context=chosen[:, :-1], target=chosen[:, -1])

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: CharLMData, split: str
    ) -> dict[str, float]:
        windows = data.splits[split].unfold(0, cfg.model.context + 1, 1)
        total, count = 0.0, 0
        was_training = model.training
        model.eval()
        device = module_device(model)
        with torch.no_grad():
            for start in range(0, len(windows), 8192):
                chunk = move_to(windows[start : start + 8192], device)
                logits = model(chunk[:, :-1])
                total += float(F.cross_entropy(logits, chunk[:, -1], reduction="sum"))
                count += len(chunk)
        model.train(was_training)
        nats = total / count
        return {
            f"{split}_loss": nats,
            f"{split}_bpc": nats / math.log(2),
            f"{split}_ppl": math.exp(nats),
        }

    def generate(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: CharLMData,
        *,
        prompt: str = "",
        max_tokens: int = 200,
        temperature: float = 1.0,
        seed: int = 0,
        **_: object,
    ) -> Iterator[str]:
        if not isinstance(model, CharMLPLM):
            raise ConfigError("lm_char_mlp runs hold a CharMLPLM")
        prompt_ids = encode_chars(data.vocab, prompt, "the prompt").tolist()
        generator = torch.Generator().manual_seed(seed)
        first = data.vocab.stoi.get("\n", 0)
        out = model.sample(prompt_ids, max_tokens, temperature, generator, pad_index=first)
        yield prompt
        yield from (data.vocab.itos[i] for i in out)

"""Image captioning (task ``caption``): one image (or its features) in, a sentence out.

Data, ``data.dataset``:

* ``digit_scenes``: scenes of 2-5 of scikit-learn's handwritten digits with captions such
  as ``"three digits : 4 1 7"`` (:mod:`seqlab.data.digit_scenes`), composed once from
  ``data.split_seed``; test scenes hold test images only.
* a folder holding ``{train,val,test}.npy`` and ``{train,val,test}.txt``: N inputs (images
  (N, H, W) for the ``cnn`` encoder; feature vectors (N, D) or maps (N, K, D) / (N, H, W, D)
  from any encoder for ``features``) and N captions, one per line.

With ``data.pretrain_steps`` > 0 (``digit_scenes`` and the ``cnn`` encoder), a fresh
model's CNN first learns to name the digit of one-digit scenes composed from the training
images (mean over the annotation vectors, a linear layer, softmax; Adam at ``optim.lr``,
batches of ``trainer.batch_size``), as Show, Attend and Tell starts from a CNN trained to
classify images; the linear layer is then dropped and the whole captioner trained. Trained
only through the attentive decoder, the CNN never left chance on the digits
(docs/results/speech.md).

Metrics: ``{split}_bleu`` (sacreBLEU, default settings: 13a tokenisation, cased, on the
captions as written) and ``{split}_acc``, the share of captions produced exactly (%);
for ``digit_scenes`` also ``{split}_digit_acc``, the share of the scenes' digits named at
their position (%).
``seqlab predict RUN_DIR a.npy b.npy`` captions ``.npy`` inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import sacrebleu
import torch
from rich.console import Console
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, contract, move_to
from seqlab.data.batching import pad_batch
from seqlab.data.digit_scenes import (
    SceneConfig,
    compose_scenes,
    load_digit_images,
    split_images,
)
from seqlab.data.vocab import BOS, EOS, PAD, UNK, Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.models.captioner import CaptionBatch, Captioner, CaptionerConfig
from seqlab.nn.image_encoder import ConvEncoder
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask
from seqlab.train.device import module_device

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CaptionDataConfig:
    dataset: str = "digit_scenes"
    """``digit_scenes`` (generated), or a folder of ``{split}.npy`` + ``{split}.txt``."""
    scenes: SceneConfig = field(default_factory=SceneConfig)
    train_scenes: int = 8000
    val_scenes: int = 500
    test_scenes: int = 1000
    split_seed: int = 1234
    eval_batch_size: int = 250
    pretrain_steps: int = 0
    """``digit_scenes`` with the ``cnn`` encoder: steps of naming the digit of one-digit
    training scenes that start a fresh model's CNN (0: none)."""

    def validate(self) -> None:
        if min(self.train_scenes, self.val_scenes, self.test_scenes) < 1:
            raise ConfigError("data.*_scenes must be >= 1")
        if self.pretrain_steps < 0:
            raise ConfigError("data.pretrain_steps must be >= 0")
        self.scenes.validate()


@dataclass
class CaptionData:
    vocab: Vocab
    inputs: dict[str, np.ndarray]
    captions: dict[str, list[str]]
    fresh: bool = False
    """Set up to train from scratch (not to resume or to load a finished run)."""

    @property
    def feature_size(self) -> int:
        return int(self.inputs["train"].shape[-1])


CAPTION_MODELS: Registry[ModelSpec[CaptionData]] = Registry("captioning model")
CAPTION_MODELS.register(
    "sat",
    ModelSpec(
        CaptionerConfig,
        lambda cfg, data: Captioner(
            cfg.model,
            data.feature_size,
            len(data.vocab),
            data.vocab.index(BOS),
            data.vocab.index(EOS),
            data.vocab.pad_index,
        ),
    ),
)


def generate_scenes(dcfg: CaptionDataConfig) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    images, labels = load_digit_images()
    pools = split_images(len(images), dcfg.scenes, dcfg.split_seed)
    counts = {"train": dcfg.train_scenes, "val": dcfg.val_scenes, "test": dcfg.test_scenes}
    inputs, captions = {}, {}
    for offset, split in enumerate(SPLITS):
        scenes = compose_scenes(
            images, labels, pools[split], counts[split], dcfg.scenes, dcfg.split_seed + offset
        )
        inputs[split], captions[split] = scenes.images, scenes.captions
    return inputs, captions


def read_folder(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """``{split}.npy`` and ``{split}.txt`` of each split, checked against each other."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of {{split}}.npy and {{split}}.txt files")
    inputs, captions = {}, {}
    for split in SPLITS:
        array_path, text_path = folder / f"{split}.npy", folder / f"{split}.txt"
        for path in (array_path, text_path):
            if not path.is_file():
                raise DataError(f"{path}: missing (a caption folder needs {split}.npy/.txt)")
        inputs[split] = load_array(array_path, batched=True)
        lines = text_path.read_text(encoding="utf-8").splitlines()
        empty = [n for n, line in enumerate(lines, 1) if not line.strip()]
        if empty:
            raise DataError(f"{text_path}:{empty[0]}: empty caption")
        if len(lines) != len(inputs[split]):
            raise DataError(
                f"{array_path} holds {len(inputs[split])} inputs but {text_path} "
                f"{len(lines)} captions"
            )
        captions[split] = lines
    return inputs, captions


def load_array(path: Path, batched: bool) -> np.ndarray:
    """A float32 array from ``path`` (.npy); a clear DataError when it is not one."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable .npy array ({err})") from None
    if not np.issubdtype(array.dtype, np.number) or array.size == 0:
        raise DataError(f"{path}: expected a non-empty numeric array, got {array.dtype}")
    lowest = 2 if batched else 1
    if not lowest <= array.ndim <= lowest + 2:
        raise DataError(f"{path}: expected {lowest}-{lowest + 2} dimensions, got {array.shape}")
    return array.astype(np.float32)


def pretrain_cnn(
    encoder: nn.Module, dcfg: CaptionDataConfig, steps: int, lr: float, batch_size: int
) -> float:
    """Train ``encoder`` (images (B, H, W) -> annotations (B, K, C)) with a linear layer
    over the mean annotation vector to name the digit of one-digit scenes of the training
    images (a fresh batch each step, seeded by ``data.split_seed``); returns the mean
    cross-entropy of the last 20 steps. The linear layer is discarded."""
    images, labels = load_digit_images()
    pool = split_images(len(images), dcfg.scenes, dcfg.split_seed)["train"]
    one = replace(dcfg.scenes, min_digits=1, max_digits=1)
    device = module_device(encoder)
    head = nn.Linear(cast(ConvEncoder, encoder).channels, 10).to(device)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=lr)
    encoder.train()
    losses: list[float] = []
    for step in range(steps):
        scenes = compose_scenes(
            images, labels, pool, batch_size, one, dcfg.split_seed + 1000 + step
        )
        inputs = torch.from_numpy(scenes.images).to(device)
        digits = torch.tensor([d[0] for d in scenes.digits], device=device)
        loss = F.cross_entropy(head(encoder(inputs).mean(dim=1)), digits)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses[-20:]))


def digit_accuracy(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Percent of the references' digits (the words after ``:``) that the hypothesis has
    at the same position after its own ``:``; a missing digit counts as wrong."""
    right = total = 0
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        wanted = reference.rpartition(":")[2].split()
        got = hypothesis.rpartition(":")[2].split() if ":" in hypothesis else []
        right += sum(a == b for a, b in zip(wanted, got, strict=False))
        total += len(wanted)
    return 100.0 * right / max(total, 1)


def make_batch(inputs: np.ndarray, captions: Sequence[str], vocab: Vocab) -> CaptionBatch:
    ids = [vocab.encode(c.split()) + [vocab.index(EOS)] for c in captions]
    return CaptionBatch(torch.from_numpy(inputs), pad_batch(ids, vocab.pad_index))


class CaptionTask(TrainedTask[CaptionData]):
    name = "caption"
    data_config = CaptionDataConfig
    models = CAPTION_MODELS
    default_model = "sat"
    predict_inputs = "files"

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> CaptionData:
        dcfg: CaptionDataConfig = cfg.data
        if dcfg.dataset == "digit_scenes":
            inputs, captions = generate_scenes(dcfg)
        else:
            inputs, captions = read_folder(Path(dcfg.dataset))
        encoder = cfg.model.encoder
        if encoder == "cnn" and inputs["train"].ndim != 3:
            raise ConfigError(
                f"model.encoder 'cnn' needs images (N, H, W), the data holds "
                f"{inputs['train'].shape}; use model.encoder: features"
            )
        if train:
            vocab = Vocab.build((c.split() for c in captions["train"]), (PAD, UNK, BOS, EOS))
            vocab.save(RunDir(run_dir).vocab)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
        if dcfg.pretrain_steps and (dcfg.dataset != "digit_scenes" or encoder != "cnn"):
            raise ConfigError(
                "data.pretrain_steps needs data.dataset: digit_scenes and model.encoder: cnn"
            )
        return CaptionData(vocab, inputs, captions, fresh=train)

    def build_model(self, cfg: ExperimentConfig, data: CaptionData) -> nn.Module:
        """The spec's model; a fresh one's CNN pretrained on one-digit scenes first when
        ``data.pretrain_steps`` > 0."""
        model = super().build_model(cfg, data)
        steps = cfg.data.pretrain_steps
        if data.fresh and steps:
            encoder = cast(Captioner, model).encoder
            loss = pretrain_cnn(encoder, cfg.data, steps, cfg.optim.lr, cfg.trainer.batch_size)
            Console(stderr=True).print(
                f"pretrained the CNN on one-digit scenes: {steps} steps, cross-entropy "
                f"{loss:.3f} over the last 20",
                highlight=False,
            )
        return model

    def train_batches(
        self, cfg: ExperimentConfig, data: CaptionData, epoch: int
    ) -> Iterator[CaptionBatch]:
        order = np.random.default_rng(cfg.trainer.seed * 100_003 + epoch).permutation(
            len(data.captions["train"])
        )
        size = cfg.trainer.batch_size
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            captions = [data.captions["train"][i] for i in chosen]
            yield make_batch(data.inputs["train"][chosen], captions, data.vocab)

    def caption(
        self, cfg: ExperimentConfig, model: nn.Module, data: CaptionData, inputs: np.ndarray
    ) -> list[str]:
        dcfg: CaptionDataConfig = cfg.data
        device = module_device(model)
        texts = []
        for start in range(0, len(inputs), dcfg.eval_batch_size):
            chunk = torch.from_numpy(inputs[start : start + dcfg.eval_batch_size]).to(device)
            for decoded in model.decode(chunk):  # type: ignore[operator]
                texts.append(" ".join(data.vocab.decode(decoded.tokens)))
        return texts

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: CaptionData, split: str
    ) -> dict[str, float]:
        dcfg: CaptionDataConfig = cfg.data
        inputs, references = data.inputs[split], data.captions[split]
        was_training = model.training
        model.eval()
        device = module_device(model)
        loss_sum, tokens = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(references), dcfg.eval_batch_size):
                end = start + dcfg.eval_batch_size
                batch = make_batch(inputs[start:end], references[start:end], data.vocab)
                out = contract(model).loss(move_to(batch, device))
                loss_sum += float(out.loss) * out.n
                tokens += out.n
            hypotheses = self.caption(cfg, model, data, inputs)
        model.train(was_training)
        exact = sum(h == r for h, r in zip(hypotheses, references, strict=True))
        metrics = {
            f"{split}_loss": loss_sum / tokens,
            f"{split}_bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            f"{split}_acc": 100.0 * exact / len(references),
        }
        if dcfg.dataset == "digit_scenes":
            metrics[f"{split}_digit_acc"] = digit_accuracy(hypotheses, references)
        return metrics

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: CaptionData, lines: Iterable[str]
    ) -> Iterator[str]:
        """``caption<TAB>path`` for each ``.npy`` input (one image or feature array)."""
        expected = data.inputs["train"].shape[1:]
        for line in lines:
            path = Path(line.strip())
            if not path.is_file():
                raise DataError(f"{path}: input file not found")
            array = load_array(path, batched=False)
            if array.shape != expected:
                raise DataError(f"{path}: expected an array of shape {expected}, got {array.shape}")
            [text] = self.caption(cfg, model, data, array[None])
            yield f"{text}\t{path}"

    def attention(
        self, cfg: ExperimentConfig, model: nn.Module, data: CaptionData, inputs: np.ndarray
    ) -> tuple[list[str], Tensor, tuple[int, int]]:
        """For one input: its caption's words then <eos>, the attention weights of each
        step over the K annotation vectors (S, K), and their grid (rows, columns)."""
        tensor = torch.from_numpy(inputs[None]).to(module_device(model))
        [decoded] = model.decode(tensor)  # type: ignore[operator]
        words = data.vocab.decode(decoded.tokens) + ([EOS] if decoded.finished else [])
        if decoded.attention is None:
            raise ConfigError("this captioner has no attention weights to draw")
        return words, decoded.attention, model.grid(tensor)  # type: ignore[operator]

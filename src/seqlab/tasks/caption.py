"""Image captioning (task ``caption``): one image (or its features) in, a sentence out.

Data, ``data.dataset``:

* ``digit_scenes``: scenes of 2-5 of scikit-learn's handwritten digits with captions such
  as ``"three digits : 4 1 7"`` (:mod:`seqlab.data.digit_scenes`), composed once from
  ``data.split_seed``; test scenes hold test images only.
* a folder holding ``{train,val,test}.npy`` and ``{train,val,test}.txt``: N inputs (images
  (N, H, W) for the ``cnn`` encoder; feature vectors (N, D) or maps (N, K, D) / (N, H, W, D)
  from any encoder for ``features``) and N captions, one per line.

Metrics: ``{split}_bleu`` (sacreBLEU, default settings: 13a tokenisation, cased, on the
captions as written) and ``{split}_acc``, the share of captions produced exactly (%).
``seqlab predict RUN_DIR a.npy b.npy`` captions ``.npy`` inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sacrebleu
import torch
from torch import Tensor, nn

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

    def validate(self) -> None:
        if min(self.train_scenes, self.val_scenes, self.test_scenes) < 1:
            raise ConfigError("data.*_scenes must be >= 1")
        self.scenes.validate()


@dataclass
class CaptionData:
    vocab: Vocab
    inputs: dict[str, np.ndarray]
    captions: dict[str, list[str]]

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
        return CaptionData(vocab, inputs, captions)

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
        return {
            f"{split}_loss": loss_sum / tokens,
            f"{split}_bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            f"{split}_acc": 100.0 * exact / len(references),
        }

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

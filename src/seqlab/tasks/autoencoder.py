"""The ``ae_bow`` task: autoencoders on bag-of-words vectors, judged by a linear probe.

Data: the sentences of MR (or any labelled-lines file), split as in ``bow_classify``
(:func:`~seqlab.tasks.bow_classify.split_indices`, k-fold with ``eval.folds``, stratified
by label). Each sentence becomes a binary vector over the ``data.max_features`` most
frequent words of the training split (other words are dropped): a dense (N, D) tensor.

Training. ``dense``, ``sparse``, ``denoising`` and ``vae`` models learn from every
training sentence without its label, through the one Trainer; ``val_loss`` is their
objective on the validation sentences and selects the best weights. ``stacked`` is first
pretrained greedily layer by layer on every training sentence, one Trainer fit per layer
in ``RUN_DIR/pretrain/layer{l}`` (:mod:`seqlab.tasks.layerwise`: ``model.pretrain_epochs``
epochs per layer, Adam with ``model.pretrain_lr``, resumable; reported as
``layer{l}_error_before`` and ``layer{l}_error_after``), then fine-tuned as a classifier
by the Trainer.

Models. Each model name has an :class:`AESpec` in ``AE_MODELS`` (config class, build
function, ``collate`` for a classifier's labelled batches, optional ``pretrain`` hook);
the task asks the spec, never the model's type.

Few labels. Only ``data.labels`` training examples keep their label (a random subset drawn
with ``trainer.seed``; null: all of them), and no other label is used to train or select
anything. For the autoencoders, a multinomial logistic regression (:class:`LinearProbe`)
is fitted on the codes of those examples, its L2 strength chosen by 5-fold
cross-validation on them; ``val_acc`` / ``test_acc`` are its accuracy on the codes of the
val / test sentences. The stacked model classifies by itself: it is fine-tuned on 80% of
the labelled examples and the other 20% choose the epoch (``heldout_acc``, which its
config names as ``eval.metric``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec, contract, move_to
from seqlab.data.tokenize import build_tokenizer
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.io import atomic_write_text
from seqlab.nn.autoencoder import (
    Activation,
    Autoencoder,
    DenoisingAutoencoder,
    LabelledBatch,
    Noise,
    Reconstruction,
    SparseAutoencoder,
    StackedAutoencoder,
    VariationalAutoencoder,
)
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask
from seqlab.tasks.bow_classify import BowDataConfig, load_examples, split_indices
from seqlab.tasks.layerwise import LayerwiseStack, pretrain_layerwise
from seqlab.train.checkpoint import load_weights
from seqlab.train.device import module_device
from seqlab.train.trainer import Trainer, seed_everything

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
"""L2 strengths the linear probe chooses from (on features scaled to unit mean variance)."""
PROBE_FOLDS = 5
HELDOUT_FRACTION = 0.2
"""Share of the labelled examples that choose the stacked model's fine-tuning epoch."""
CHUNK = 1024


@dataclass(frozen=True)
class AEDataConfig:
    dataset: str = "rt_polarity"
    """``rt_polarity`` (MR, cp1252), or a path to a labelled-lines file ``label<TAB>text``."""
    encoding: str = "cp1252"
    tokenizer: Literal["whitespace", "word"] = "whitespace"
    lowercase: bool = True
    max_features: int = 2000
    """D: the input is word presence over the most frequent training words."""
    labels: int | None = None
    """Labelled training examples for the downstream classifier (null: all)."""
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 1234

    def validate(self) -> None:
        if not 0.0 < self.val_fraction < 0.5 or not 0.0 <= self.test_fraction < 0.5:
            raise ConfigError("data.val_fraction must be in (0, 0.5), test_fraction in [0, 0.5)")
        if self.max_features < 1:
            raise ConfigError("data.max_features must be positive")
        if self.labels is not None and self.labels < PROBE_FOLDS:
            raise ConfigError(f"data.labels must be at least {PROBE_FOLDS} (or null for all)")


@dataclass(frozen=True)
class DenseConfig:
    """Autoencoder D -> K -> D (``seqlab.nn.autoencoder.Autoencoder``)."""

    name: str = "dense"
    code_size: int = 100
    activation: Activation = "sigmoid"
    tied: bool = False
    loss: Reconstruction = "bce"


@dataclass(frozen=True)
class SparseConfig:
    """Autoencoder with ``l1`` * |code|_1 added to the loss."""

    name: str = "sparse"
    code_size: int = 100
    activation: Activation = "relu"
    tied: bool = False
    loss: Reconstruction = "bce"
    l1: float = 1e-2


@dataclass(frozen=True)
class DenoisingConfig:
    """Autoencoder reconstructing x from a corrupted copy (``mask``: p = noise_level;
    ``gaussian``: std = noise_level)."""

    name: str = "denoising"
    code_size: int = 100
    activation: Activation = "sigmoid"
    tied: bool = False
    loss: Reconstruction = "bce"
    noise: Noise = "mask"
    noise_level: float = 0.3


@dataclass(frozen=True)
class VAEConfig:
    """Variational autoencoder; the code is the posterior mean."""

    name: str = "vae"
    code_size: int = 100
    hidden_size: int | None = 500
    activation: Activation = "tanh"
    loss: Reconstruction = "bce"
    beta: float = 1.0


@dataclass(frozen=True)
class StackedConfig:
    """Deep encoder pretrained layer by layer, then fine-tuned with a softmax head."""

    name: str = "stacked"
    hidden_sizes: tuple[int, ...] = (500, 100)
    activation: Activation = "sigmoid"
    tied: bool = False
    loss: Reconstruction = "bce"
    noise_level: float = 0.0
    """Masking noise of each layer's autoencoder in pretraining (0: plain autoencoders)."""
    dropout: float = 0.5
    pretrain_epochs: int = 10
    """Epochs of each layer's pretraining (one Trainer fit per layer, batches of
    ``trainer.batch_size``, at most ``trainer.max_steps`` steps)."""
    pretrain_lr: float = 1e-3
    """Adam's learning rate in pretraining (``optim`` is the fine-tuning's)."""


class Encoder(Protocol):
    """A model with codes: ``encode(x)`` (B, D) -> (B, K)."""

    def encode(self, x: Tensor) -> Tensor: ...


# ----------------------------------------------------------------------------- data


@dataclass
class AEData:
    vocab: Vocab
    """The D input words (no specials)."""
    labels: list[str]
    inputs: dict[str, Tensor]
    """split -> (N, D) bool word presence"""
    targets: dict[str, Tensor]
    """split -> (N,) class index"""
    labelled: Tensor
    """(L,) indices into the train split of the examples whose labels may be used"""


def labelled_subset(n_train: int, labels: int | None, seed: int) -> Tensor:
    """(L,) the training examples that keep their labels, in a random order (seeded)."""
    if labels is not None and labels > n_train:
        raise ConfigError(f"data.labels={labels} but the training split has {n_train} examples")
    order = np.random.default_rng(seed).permutation(n_train)
    return torch.from_numpy(order[: labels or n_train].copy())


def bow_matrix(sentences: list[list[str]], vocab: Vocab) -> Tensor:
    """(N, D) bool: word d occurs in sentence n (words outside ``vocab`` are dropped)."""
    rows, cols = [], []
    for row, tokens in enumerate(sentences):
        ids = {vocab.stoi[t] for t in tokens if t in vocab.stoi}
        rows.extend([row] * len(ids))
        cols.extend(sorted(ids))
    matrix = torch.zeros(len(sentences), len(vocab), dtype=torch.bool)
    matrix[torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)] = True
    return matrix


def load_data(
    cfg: ExperimentConfig, *, fold: int | None = None, vocab: Vocab | None = None
) -> AEData:
    """Read, split and vectorize the data of ``cfg``; the vocabulary is built from the
    training split unless given; label names are sorted."""
    dcfg: AEDataConfig = cfg.data
    texts, labels, _ = load_examples(BowDataConfig(dataset=dcfg.dataset, encoding=dcfg.encoding))
    tokenizer = build_tokenizer(dcfg.tokenizer)
    tokens = [tokenizer.encode(t.lower() if dcfg.lowercase else t) for t in texts]
    idx = split_indices(
        len(texts),
        cfg.eval.folds,
        fold,
        dcfg.val_fraction,
        dcfg.test_fraction,
        dcfg.split_seed,
        labels,
    )
    if vocab is None:
        vocab = Vocab.build(
            (tokens[i] for i in idx["train"]), specials=(), max_size=dcfg.max_features
        )
    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    inputs = {s: bow_matrix([tokens[i] for i in ids], vocab) for s, ids in idx.items() if len(ids)}
    targets = {
        s: torch.tensor([index[labels[i]] for i in ids], dtype=torch.long)
        for s, ids in idx.items()
        if len(ids)
    }
    if len(names) < 2:
        raise DataError(f"{dcfg.dataset}: needs at least two labels, found {names}")
    labelled = labelled_subset(len(idx["train"]), dcfg.labels, cfg.trainer.seed)
    return AEData(vocab, names, inputs, targets, labelled)


def encode_all(model: nn.Module, inputs: Tensor) -> Tensor:
    """(N, D) bool -> (N, K) codes of ``model.encode`` in evaluation mode, on the CPU."""
    was_training = model.training
    model.eval()
    encoder = cast(Encoder, model)
    device = module_device(model)
    with torch.no_grad():
        codes = torch.cat(
            [
                encoder.encode(move_to(inputs[s : s + CHUNK].float(), device)).cpu()
                for s in range(0, len(inputs), CHUNK)
            ]
        )
    model.train(was_training)
    return codes


# ----------------------------------------------------------------------------- linear probe


@dataclass(frozen=True)
class LinearProbe:
    """Multinomial logistic regression on codes: ``softmax(((h - m) / s) W^T + b)``.

    m is the mean of the training codes and s the root-mean-square of the centered
    training codes (one scalar: the features keep their relative scales, and one L2 grid
    suits every code); trained by L-BFGS on mean cross-entropy + l2/2 ‖W‖². At the exact
    optimum centering changes nothing (b is not penalized), but under a strong L2 the
    weights are tiny and the decision rests on b; L-BFGS stops long before b has moved
    from 0 (its gradient starts at 0 for balanced classes), which puts the boundary at
    h = 0 instead of at the data. Centered codes make b = 0 the right start.
    """

    weight: Tensor
    """(C, K)"""
    bias: Tensor
    """(C,)"""
    scale: float
    l2: float
    center: Tensor
    """(K,) the mean of the training codes"""

    def logits(self, codes: Tensor) -> Tensor:
        """(N, K) -> (N, C)"""
        return ((codes - self.center) / self.scale) @ self.weight.T + self.bias

    def accuracy(self, codes: Tensor, targets: Tensor) -> float:
        """Percent of ``codes`` (N, K) classified as ``targets`` (N,)."""
        return 100.0 * float((self.logits(codes).argmax(-1) == targets).float().mean())


def _logistic_regressions(
    x: Tensor, y: Tensor, num_classes: int, l2: Tensor, mask: Tensor, iterations: int = 200
) -> tuple[Tensor, Tensor]:
    """P independent logistic regressions on features x (N, K), solved together by L-BFGS
    (their objectives add up, so the joint minimum is each one's minimum): problem p fits
    the examples where ``mask[p]`` (P, N) is True, minimizing their mean cross-entropy
    + ``l2[p]``/2 ‖W_p‖². One pass over x serves all P. Returns W (P, C, K), b (P, C)."""
    problems, n, k = len(l2), x.shape[0], x.shape[1]
    weight = torch.zeros(problems, num_classes, k, requires_grad=True)
    bias = torch.zeros(problems, num_classes, requires_grad=True)
    share = mask.float() / mask.sum(1, keepdim=True)  # (P, N): 1/N_p on p's examples
    index = y[:, None, None].expand(n, problems, 1)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=iterations,
        history_size=10,
        tolerance_change=1e-7,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        logits = (x @ weight.reshape(-1, k).T).view(n, problems, num_classes) + bias
        nll = -logits.log_softmax(-1).gather(-1, index).squeeze(-1)  # (N, P)
        loss = (nll.T * share).sum() + 0.5 * (l2 * weight.pow(2).sum((1, 2))).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def fit_linear_probe(
    codes: Tensor,
    targets: Tensor,
    num_classes: int,
    *,
    l2_grid: tuple[float, ...] = L2_GRID,
    folds: int = PROBE_FOLDS,
) -> LinearProbe:
    """Logistic regression on ``codes`` (N, K) with the L2 strength of ``l2_grid`` that is
    most accurate over ``folds`` contiguous cross-validation folds (ties: the stronger L2),
    refitted on all N. Uses only the given examples; shuffle them beforehand."""
    codes = codes.float()
    center = codes.mean(0)
    scale = float((codes - center).pow(2).mean().sqrt()) or 1.0
    x = (codes - center) / scale
    strengths = sorted(l2_grid, reverse=True)
    grid = torch.tensor(strengths)
    fold = torch.arange(len(x)) * folds // len(x)  # (N,) contiguous folds of equal size
    held = fold[None, :] == torch.arange(folds)[:, None]  # (F, N)
    # Problem (i, f): strength grid[i] fitted without fold f.
    weight, bias = _logistic_regressions(
        x, targets, num_classes, grid.repeat_interleave(folds), ~held.repeat(len(grid), 1)
    )
    logits = torch.einsum("nk,pck->pnc", x, weight) + bias[:, None, :]  # (P, N, C)
    hits = (logits.argmax(-1) == targets) & held.repeat(len(grid), 1)  # held-out hits
    correct = hits.sum(1).view(len(grid), folds).sum(1)  # (len(grid),)
    best = strengths[int(correct.argmax())]  # argmax takes the first: the strongest L2
    weight, bias = _logistic_regressions(
        x, targets, num_classes, torch.tensor([best]), torch.ones(1, len(x), dtype=torch.bool)
    )
    return LinearProbe(weight[0], bias[0], scale, best, center)


def probe_metrics(
    model: nn.Module | None, data: AEData, splits: list[str]
) -> tuple[dict[str, float], LinearProbe]:
    """``{split}_acc`` of a linear probe fitted on the labelled training codes of ``model``
    (``None``: the raw bag-of-words vectors)."""

    def codes(split: str) -> Tensor:
        inputs = data.inputs[split]
        return inputs.float() if model is None else encode_all(model, inputs)

    train_codes = codes("train")[data.labelled]
    train_targets = data.targets["train"][data.labelled]
    probe = fit_linear_probe(train_codes, train_targets, len(data.labels))
    metrics = {f"{s}_acc": probe.accuracy(codes(s), data.targets[s]) for s in splits}
    return metrics, probe


# ----------------------------------------------------------------------------- model specs


class PretrainHook(Protocol):
    """Unsupervised training of a fresh model before its Trainer fit, in ``run_dir``
    (resumable); returns metrics to report."""

    def __call__(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: AEData,
        run_dir: Path,
        *,
        resume: bool,
        console: Console | None,
    ) -> dict[str, float]: ...


@dataclass(frozen=True)
class AESpec(ModelSpec[AEData]):
    """An ``ae_bow`` model: the contract's spec (config class, ``build(cfg, data)``,
    ``collate``) and an optional ``pretrain`` hook run before the Trainer fit.

    ``collate`` makes a batch of labelled examples from a list of (input (D,), label)
    pairs: the model is a classifier, fine-tuned on the labelled training examples and
    judged by its own accuracy. ``None``: the model learns from unlabelled inputs (the
    batch is the (B, D) float tensor) and is judged by its objective and a linear probe
    on its codes.
    """

    pretrain: PretrainHook | None = None


def build_dense(cfg: ExperimentConfig, data: AEData) -> nn.Module:
    m: DenseConfig = cfg.model
    return Autoencoder(len(data.vocab), m.code_size, m.activation, m.tied, m.loss)


def build_sparse(cfg: ExperimentConfig, data: AEData) -> nn.Module:
    m: SparseConfig = cfg.model
    return SparseAutoencoder(len(data.vocab), m.code_size, m.activation, m.tied, m.loss, l1=m.l1)


def build_denoising(cfg: ExperimentConfig, data: AEData) -> nn.Module:
    m: DenoisingConfig = cfg.model
    return DenoisingAutoencoder(
        len(data.vocab),
        m.code_size,
        m.activation,
        m.tied,
        m.loss,
        noise=m.noise,
        noise_level=m.noise_level,
    )


def build_vae(cfg: ExperimentConfig, data: AEData) -> nn.Module:
    m: VAEConfig = cfg.model
    return VariationalAutoencoder(
        len(data.vocab), m.code_size, m.hidden_size, m.activation, m.loss, m.beta
    )


def build_stacked(cfg: ExperimentConfig, data: AEData) -> nn.Module:
    m: StackedConfig = cfg.model
    return StackedAutoencoder(
        len(data.vocab),
        m.hidden_sizes,
        len(data.labels),
        m.activation,
        m.tied,
        m.loss,
        dropout=m.dropout,
        noise_level=m.noise_level,
    )


def pretrain_stacked(
    cfg: ExperimentConfig,
    model: nn.Module,
    data: AEData,
    run_dir: Path,
    *,
    resume: bool,
    console: Console | None,
) -> dict[str, float]:
    """Greedy layer-wise pretraining on every training sentence (labels unused), one
    Trainer fit per layer in ``run_dir/pretrain/layer{l}``: ``layer{l}_error_before`` and
    ``layer{l}_error_after``."""
    mcfg: StackedConfig = cfg.model
    reports = pretrain_layerwise(
        cast(LayerwiseStack, model),
        cfg,
        data.inputs["train"],
        data.inputs["val"],
        run_dir,
        epochs=mcfg.pretrain_epochs,
        lr=mcfg.pretrain_lr,
        resume=resume,
        console=console,
    )
    metrics = {}
    for layer, report in enumerate(reports, start=1):
        metrics[f"layer{layer}_error_before"] = report.before
        metrics[f"layer{layer}_error_after"] = report.after
    return metrics


def collate_labelled(examples: list[tuple[Tensor, Tensor]]) -> LabelledBatch:
    """(input (D,), label ()) pairs -> a batch: inputs (B, D) float, labels (B,)."""
    inputs, labels = zip(*examples, strict=True)
    return LabelledBatch(torch.stack(inputs).float(), torch.stack(labels))


AE_MODELS: Registry[ModelSpec[AEData]] = Registry("autoencoder model")
AE_MODELS.register("dense", AESpec(DenseConfig, build_dense))
AE_MODELS.register("sparse", AESpec(SparseConfig, build_sparse))
AE_MODELS.register("denoising", AESpec(DenoisingConfig, build_denoising))
AE_MODELS.register("vae", AESpec(VAEConfig, build_vae))
AE_MODELS.register(
    "stacked", AESpec(StackedConfig, build_stacked, collate_labelled, pretrain_stacked)
)


def model_spec(cfg: ExperimentConfig) -> AESpec:
    """The spec of ``cfg.model`` (every entry of ``AE_MODELS`` is an :class:`AESpec`)."""
    spec = AE_MODELS.get(cfg.model.name)
    assert isinstance(spec, AESpec), f"{cfg.model.name!r} is registered without AESpec"
    return spec


# ----------------------------------------------------------------------------- the task


class AutoencoderTask(TrainedTask[AEData]):
    name = "ae_bow"
    data_config = AEDataConfig
    models = AE_MODELS
    default_model = "dense"
    supports_folds = True

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> AEData:
        if train:
            data = load_data(cfg, fold=fold)
            data.vocab.save(RunDir(run_dir).vocab)
            atomic_write_text(RunDir(run_dir).labels, json.dumps(data.labels))
            return data
        if not (RunDir(run_dir).labels).is_file():
            raise RunDirError(f"{RunDir(run_dir).labels}: missing; is this an ae_bow run dir?")
        data = load_data(cfg, fold=fold, vocab=Vocab.load(RunDir(run_dir).vocab))
        saved = json.loads((RunDir(run_dir).labels).read_text(encoding="utf-8"))
        if saved != data.labels:
            raise DataError(f"{cfg.data.dataset}: labels {data.labels} but the run has {saved}")
        return data

    def build_model(self, cfg: ExperimentConfig, data: AEData) -> nn.Module:
        try:
            return model_spec(cfg).build(cfg, data)
        except ValueError as err:  # the modules check their arguments
            raise ConfigError(f"model {cfg.model.name!r}: {err}") from err

    def train_batches(self, cfg: ExperimentConfig, data: AEData, epoch: int) -> list[Any]:
        """Shuffled (B, D) inputs of every training sentence; for a classifier (a spec with
        ``collate``), its batches of the fine-tuning examples."""
        rng = np.random.default_rng([cfg.trainer.seed, epoch])
        size = cfg.trainer.batch_size
        inputs = data.inputs["train"]
        collate = model_spec(cfg).collate
        if collate is None:
            order = torch.from_numpy(rng.permutation(len(inputs)))
            return [inputs[order[s : s + size]].float() for s in range(0, len(order), size)]
        chosen, _ = finetune_split(data)
        chosen = chosen[torch.from_numpy(rng.permutation(len(chosen)))]
        targets = data.targets["train"]
        return [
            collate(list(zip(inputs[ids], targets[ids], strict=True)))
            for ids in (chosen[s : s + size] for s in range(0, len(chosen), size))
        ]

    def objective(self, model: nn.Module, inputs: Tensor, split: str) -> dict[str, float]:
        """``{split}_loss``: the model's training objective, mean per example."""
        total = 0.0
        device = module_device(model)
        with torch.no_grad():
            for s in range(0, len(inputs), CHUNK):
                out = contract(model).loss(move_to(inputs[s : s + CHUNK].float(), device))
                total += float(out.loss) * out.n
        return {f"{split}_loss": total / len(inputs)}

    def classify(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        inputs: Tensor,
        targets: Tensor,
        split: str,
    ) -> dict[str, float]:
        """``{split}_loss`` (cross-entropy) and ``{split}_acc`` of a classifier."""
        collate = model_spec(cfg).collate
        assert collate is not None
        loss, correct = 0.0, 0
        device = module_device(model)
        with torch.no_grad():
            for s in range(0, len(inputs), CHUNK):
                labels = targets[s : s + CHUNK]
                batch = collate(list(zip(inputs[s : s + CHUNK], labels, strict=True)))
                batch = move_to(batch, device)
                out = contract(model).loss(batch)
                loss += float(out.loss) * out.n
                correct += int((contract(model).predict(batch).cpu() == labels).sum())
        return {f"{split}_loss": loss / len(inputs), f"{split}_acc": 100.0 * correct / len(inputs)}

    def heldout(self, cfg: ExperimentConfig, model: nn.Module, data: AEData) -> dict[str, float]:
        """A classifier's fine-tuning metrics on its held-out labelled examples."""
        _, held = finetune_split(data)
        inputs, targets = data.inputs["train"][held], data.targets["train"][held]
        return self.classify(cfg, model, inputs, targets, "heldout")

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: AEData, split: str
    ) -> dict[str, float]:
        return self.split_metrics(cfg, model, data, [split])

    def split_metrics(
        self, cfg: ExperimentConfig, model: nn.Module, data: AEData, splits: list[str]
    ) -> dict[str, float]:
        model.eval()
        metrics: dict[str, float] = {"labelled": float(len(data.labelled))}
        if model_spec(cfg).collate is not None:
            for split in splits:
                metrics |= self.classify(cfg, model, data.inputs[split], data.targets[split], split)
            return metrics
        for split in splits:
            metrics |= self.objective(model, data.inputs[split], split)
        accuracy, probe = probe_metrics(model, data, splits)
        return metrics | accuracy | {"probe_l2": probe.l2}

    def pretrain(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: AEData,
        run_dir: Path,
        *,
        resume: bool = False,
        console: Console | None = None,
    ) -> dict[str, float]:
        """The spec's pretraining of a fresh ``model`` in ``run_dir`` (nothing for most)."""
        hook = model_spec(cfg).pretrain
        if hook is None:
            return {}
        return hook(cfg, model, data, run_dir, resume=resume, console=console)

    def train_model(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        data: AEData,
        run_dir: Path,
        *,
        resume: bool = False,
        console: Console | None = None,
    ) -> int:
        """Train ``model`` with the Trainer (reconstruction; for a classifier, fine-tuning),
        load its best weights and return the number of steps. ``resume`` continues from
        ``run_dir``'s checkpoint if there is one."""
        classifier = model_spec(cfg).collate is not None

        def evaluate(m: nn.Module) -> dict[str, float]:
            if classifier:
                return self.heldout(cfg, m, data)
            return self.objective(m, data.inputs["val"], "val")

        trainer = Trainer(
            model,
            cfg,
            run_dir,
            evaluate=evaluate,
            console=console,
            final_metrics=lambda m: self.final_metrics(cfg, m, data, "val"),
        )
        trainer.fit(
            lambda epoch: self.train_batches(cfg, data, epoch),
            resume=resume and RunDir(run_dir).checkpoint.exists(),
        )
        load_weights(RunDir(run_dir).best_weights, model)
        model.eval()
        return trainer.state.step

    def fit(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        fold: int | None = None,
        console: Console | None = None,
    ) -> dict[str, float]:
        """Pretrain (``stacked``), train, then the final metrics (with ``trainer.threads``
        torch threads when set). With ``resume`` each stage continues from its checkpoint
        (a finished one is only reloaded)."""
        seed_everything(cfg.trainer.seed, cfg.trainer.deterministic)
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        data = self.setup(cfg, run_dir, train=not resume, fold=fold)
        model = self.build_model(cfg, data).to(cfg.trainer.device)
        metrics = self.pretrain(cfg, model, data, run_dir, resume=resume, console=console)
        steps = self.train_model(cfg, model, data, run_dir, resume=resume, console=console)
        return (
            {"steps": float(steps)}
            | metrics
            | self.split_metrics(cfg, model, data, self.final_splits(cfg, data))
        )

    def splits(self, data: AEData) -> list[str]:
        return [s for s in ("val", "test") if s in data.inputs]


def finetune_split(data: AEData) -> tuple[Tensor, Tensor]:
    """The labelled training examples split into (fine-tuning, held-out) index tensors."""
    n_held = max(1, int(round(len(data.labelled) * HELDOUT_FRACTION)))
    if n_held >= len(data.labelled):
        raise ConfigError("data.labels is too small to hold out examples for fine-tuning")
    return data.labelled[n_held:], data.labelled[:n_held]

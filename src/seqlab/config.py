"""Typed, frozen experiment configs: YAML load/save, ``--set a.b=c`` overrides, validation.

An experiment config has five sections (and an optional ``anchor``, the published number
it is compared to). ``optim``, ``trainer`` and ``eval`` are the same
for every experiment; ``data`` and ``model`` are dataclasses chosen by the task
(``task: lm_char_mlp``) and by ``model.name``. Every default is visible in the dataclass
that declares it. Unknown keys fail with the key's dotted name and the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from seqlab.errors import ConfigError
from seqlab.io import atomic_write_text

DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(:[0-9]+)?")
"""The devices a run may name in ``trainer.device`` (whether one is present is checked
when training starts, not here: a run trained on a GPU is still readable without one)."""


@dataclass(frozen=True)
class AdversarialConfig:
    """Adversarial (``at``) or virtual adversarial (``vat``) training on the word
    embeddings (Miyato, Dai & Goodfellow, 2017; ``seqlab.nn.adversarial``): the loss gets
    ``weight`` times the loss at embeddings moved by a perturbation of L2 norm
    ``epsilon`` per sentence (padding never moves). ``at``: the perturbation along the
    gradient of the loss; ``vat``: the direction that most changes the predicted
    distribution (KL), found by ``power_iterations`` power iterations from a random
    direction of norm ``xi``; needs no label, so it also covers ``data.unlabelled`` rows."""

    kind: Literal["at", "vat"]
    epsilon: float = 1.0
    """The perturbation's L2 norm per sentence, in the units of the model's embeddings."""
    weight: float = 1.0
    """The weight of the adversarial term in the loss (the paper's lambda: 1)."""
    xi: float = 0.1
    """``vat``: the norm of the random direction the power iteration starts from (the
    finite-difference step; 0.1 as in the authors' code, tensorflow/models
    research/adversarial_text)."""
    power_iterations: int = 1
    """``vat``: power iterations (the paper: 1)."""

    def validate(self) -> None:
        for key, value in (("epsilon", self.epsilon), ("weight", self.weight), ("xi", self.xi)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"optim.adversarial.{key} must be a number > 0, got {value}")
        if self.power_iterations < 1:
            raise ConfigError(
                f"optim.adversarial.power_iterations must be >= 1, got {self.power_iterations}"
            )


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer, learning-rate schedule and weight penalties."""

    name: Literal["sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99
    """RMSProp's smoothing constant."""
    rho: float = 0.9
    """Adadelta's decay of the squared-gradient and squared-update averages (Kim 2014: 0.95)."""
    l2: float = 0.0
    """L2 penalty (lambda/2 * ||w||^2 added to the loss; weight decay for AdamW)."""
    l1: float = 0.0
    """L1 penalty (lambda * ||w||_1 added to the loss)."""
    l2_groups: tuple[tuple[str, float], ...] = ()
    """L2 weights for named layer groups, overriding ``l2`` for them: ``[[embedding, 0.0]]``
    leaves the word vectors unpenalised (Tai et al. 2015), ``[[composition, 1e-3],
    [output, 1e-4]]`` gives each its own (Socher et al. 2013). Group names as in
    ``optim.freeze`` (a name, or a prefix ending before a dot)."""
    schedule: Literal[
        "constant", "step", "epoch_decay", "plateau", "warmup", "noam", "cosine", "piecewise"
    ] = "constant"
    """``step``: lr *= gamma every step_size epochs; ``epoch_decay``: lr *= gamma each epoch
    after ``decay_start`` epochs (Zaremba et al.); ``plateau``: lr *= gamma when the
    validation metric has not improved for ``patience`` evaluations; ``warmup``: linear
    warmup over ``warmup_steps`` steps, then constant; ``noam``: linear warmup, then decay
    with the inverse square root of the step, peaking at ``lr`` (Vaswani et al. 2017);
    ``cosine``: linear warmup, then cosine decay to ``min_lr`` at ``total_steps``. The
    formulas are in ``seqlab.train.schedules``; ``piecewise``: the lr of epoch e (from 0)
    is that of the last ``lr_epochs`` entry ``[start, lr]`` with start <= e."""
    gamma: float = 0.5
    step_size: int = 1
    decay_start: int = 0
    patience: int = 0
    warmup_steps: int = 0
    min_lr: float = 0.0
    total_steps: int | None = None
    """``cosine``: the optimizer step at which the lr reaches ``min_lr`` (None:
    ``trainer.max_steps``)."""
    lr_epochs: tuple[tuple[int, float], ...] = ()
    """``piecewise``: ``[[0, lr0], [e1, lr1], ...]``, first start 0, starts increasing."""
    adversarial: AdversarialConfig | None = None
    """Adversarial training on the word embeddings (models with embeddings to perturb:
    the classify task's ``cnn`` and ``rnn``), e.g. ``{kind: at, epsilon: 1.0}``."""
    sgd_groups: tuple[tuple[str, float], ...] = ()
    """Layer groups updated by plain SGD (``w -= lr * grad``, no state) at their own
    learning rate instead of by ``optim.name``: ``[[embedding, 3.7]]`` trains the word
    vectors so beside Adagrad for the rest, as Tai et al.'s Tree-LSTM (their 0.1 is on a
    loss summed over each tree's nodes). Schedules scale these rates too. Names as in
    ``optim.freeze``."""
    reset_state_every: int = 0
    """Epochs between resets of the optimizer's accumulated statistics (Adagrad's sums of
    squared gradients, Adam's moments, momentum): every N epochs the optimizer starts
    afresh, as at step 1. CoreNLP's RNTN training resets Adagrad every epoch
    (``adagradResetFrequency = 1``). 0: never."""
    freeze: tuple[str, ...] = ()
    """Layer groups kept frozen (no gradient, no update), by name or prefix: ``[embedding,
    rnn]`` for the RNN classifier's embedding and every recurrent layer. The groups of a
    model: one per top-level module, one per recurrent layer (``seqlab.train.optim``)."""
    freeze_epochs: int | None = None
    """With ``freeze``: frozen for the first N epochs, then fine-tuned with the rest
    (None: frozen for the whole run)."""
    gradual_unfreeze: bool = False
    """ULMFiT's gradual unfreezing (Howard & Ruder, 2018): in epoch e (from 0) only the top
    e + 1 layer groups train; one more group, from the top down, each epoch."""
    layer_lr_decay: float = 1.0
    """Discriminative learning rates (ULMFiT: 2.6): the layer group at depth k below the
    top (output) group learns at ``lr / layer_lr_decay^k``; 1: one lr for every group."""

    def validate(self) -> None:
        """Reject the values torch's optimizers and schedules would refuse (or that diverge)."""
        checks: list[tuple[str, float, bool, str]] = [
            ("lr", self.lr, self.lr > 0, "> 0"),
            ("momentum", self.momentum, 0 <= self.momentum < 1, "in [0, 1)"),
            ("betas[0]", self.betas[0], 0 <= self.betas[0] < 1, "in [0, 1)"),
            ("betas[1]", self.betas[1], 0 <= self.betas[1] < 1, "in [0, 1)"),
            ("eps", self.eps, self.eps > 0, "> 0"),
            ("alpha", self.alpha, 0 <= self.alpha < 1, "in [0, 1)"),
            ("rho", self.rho, 0 <= self.rho < 1, "in [0, 1)"),
            ("l2", self.l2, self.l2 >= 0, ">= 0"),
            ("l1", self.l1, self.l1 >= 0, ">= 0"),
            *((f"l2_groups {name}", value, value >= 0, ">= 0") for name, value in self.l2_groups),
            ("gamma", self.gamma, self.gamma > 0, "> 0"),
            ("step_size", self.step_size, self.step_size >= 1, ">= 1"),
            ("decay_start", self.decay_start, self.decay_start >= 0, ">= 0"),
            ("patience", self.patience, self.patience >= 0, ">= 0"),
            ("warmup_steps", self.warmup_steps, self.warmup_steps >= 0, ">= 0"),
            ("min_lr", self.min_lr, self.min_lr >= 0, ">= 0"),
            ("layer_lr_decay", self.layer_lr_decay, self.layer_lr_decay > 0, "> 0"),
            ("reset_state_every", self.reset_state_every, self.reset_state_every >= 0, ">= 0"),
            *((f"sgd_groups {name}", value, value > 0, "> 0") for name, value in self.sgd_groups),
        ]
        for key, value, ok, wanted in checks:
            if not math.isfinite(value):
                raise ConfigError(f"optim.{key} must be a finite number, got {value}")
            if not ok:
                raise ConfigError(f"optim.{key} must be {wanted}, got {value}")
        if self.schedule == "plateau" and self.gamma >= 1:
            raise ConfigError(
                f"optim.gamma must be < 1 with schedule: plateau (it cuts the lr), got {self.gamma}"
            )
        if self.l2_groups and self.name == "adamw":
            raise ConfigError(
                "optim.l2_groups sets L2 penalties on the loss, which AdamW replaces by its "
                "decoupled weight decay (optim.l2); use adam, or one optim.l2 with adamw"
            )
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ConfigError(
                "optim.nesterov needs optim.name: sgd and optim.momentum > 0 "
                f"(got name {self.name}, momentum {self.momentum})"
            )
        if self.freeze_epochs is not None and (self.freeze_epochs < 1 or not self.freeze):
            raise ConfigError(
                "optim.freeze_epochs needs optim.freeze (the groups it unfreezes) and must be "
                f">= 1, got {self.freeze_epochs} with freeze {list(self.freeze)}"
            )
        if self.schedule == "piecewise":
            starts = [start for start, _ in self.lr_epochs]
            if not starts or starts[0] != 0 or starts != sorted(set(starts)):
                raise ConfigError(
                    "optim.lr_epochs must start at epoch 0 with increasing epochs for the "
                    f"piecewise schedule, got {[list(e) for e in self.lr_epochs]}"
                )
            if any(not lr > 0 for _, lr in self.lr_epochs):
                raise ConfigError("optim.lr_epochs: every lr must be > 0")
        if self.adversarial is not None:
            self.adversarial.validate()


@dataclass(frozen=True)
class TrainerConfig:
    """The training loop: length, seeding, clipping, logging, checkpoints."""

    epochs: int = 10
    max_steps: int | None = None
    """Stop after this many optimizer steps (smoke runs)."""
    max_minutes: float | None = None
    """Stop after this much training time (the demo); not reproducible across machines."""
    batch_size: int = 32
    seed: int = 1
    device: str = "cpu"
    deterministic: bool = True
    clip_norm: float | None = None
    clip_value: float | None = None
    eval_every: int = 0
    """Evaluate every N steps (0: at the end of every epoch)."""
    checkpoint_every: int = 0
    """Also checkpoint every N steps (0: at each evaluation only)."""
    early_stopping: int = 0
    """Stop after this many evaluations without improvement of ``eval.metric`` (0: never)."""
    ema_decay: float = 0.0
    """When > 0, keep an exponential moving average of the weights (Polyak averaging,
    ``avg = decay * avg + (1 - decay) * weights`` after every step); evaluation, the best
    checkpoint and the final metrics use the averaged weights. 0.999 averages over about
    the last 1000 steps."""
    log_every: int = 50
    progress: bool = True
    tensorboard: bool = False
    threads: int = 0
    """torch intra-op threads (0: torch's default)."""
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    """Autocast of the forward pass and loss to ``bf16`` (CPU and GPU) or ``fp16`` (CUDA
    only, with a gradient scaler); the weights, gradients and optimizer stay in fp32.
    ``auto``: bf16 where the device computes it natively (a CUDA GPU with bf16, a CPU whose
    oneDNN has bf16, e.g. AVX512-BF16 or AMX), fp32 elsewhere (on a CPU without it bf16 is
    emulated and several times slower); the trainer says which it chose."""
    accumulate: int = 1
    """Accumulate the gradients of this many batches per optimizer step (one step on an
    N-times-larger batch); steps, schedules, EMA, clipping and every ``*_every`` count
    optimizer steps. The last step of an epoch takes the batches that are left."""

    def validate(self) -> None:
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise ConfigError(
                f"trainer.device must be cpu, cuda, cuda:N (N a GPU index) or mps, "
                f"got {self.device!r}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"trainer.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.accumulate < 1:
            raise ConfigError(f"trainer.accumulate must be at least 1, got {self.accumulate}")
        if self.precision == "fp16" and not self.device.startswith("cuda"):
            # CPUs lack fast fp16 arithmetic and some kernels (oneDNN's LSTM) lack fp16;
            # bf16 has fp32's range and needs no loss scaler
            raise ConfigError(
                f"trainer.precision=fp16 needs a CUDA device (trainer.device is "
                f"{self.device!r}); use trainer.precision=bf16"
            )


@dataclass(frozen=True)
class EvalConfig:
    """What to measure, which metric selects the best checkpoint, cross-validation."""

    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    folds: int = 1
    """k-fold cross-validation when > 1 (tasks that support it)."""
    split: str = "test"
    final_every: int = 0
    """Also compute the task's expensive final metrics (BLEU, per-task tables) at every
    K-th evaluation (0: only at the last evaluation of training)."""
    select: Literal["best", "last"] = "best"
    """The weights a run keeps (``best.safetensors``, the final metrics): ``best`` those with
    the best ``metric`` on dev (model selection by early stopping's rule), ``last`` those of
    the last evaluation (no selection: the baseline early stopping is compared to)."""
    test: bool = True
    """Evaluate the ``split`` (test) split at the end of training; ``seqlab search`` sets it
    false, so that choosing a recipe never sees test numbers."""

    def validate(self) -> None:
        if self.final_every < 0:
            raise ConfigError(f"eval.final_every must be >= 0, got {self.final_every}")


@dataclass(frozen=True)
class AnchorConfig:
    """A published number this experiment is compared to (``seqlab report`` shows it)."""

    value: float
    source: str
    """Paper or repo, table and setting the value comes from."""
    metric: str | None = None
    """The metric the value is comparable to (None: the test counterpart of
    ``eval.metric``, e.g. ``test_acc`` for ``val_acc``)."""

    def validate(self) -> None:
        if not math.isfinite(self.value):
            raise ConfigError(f"anchor.value must be a finite number, got {self.value}")
        if not self.source.strip():
            raise ConfigError("anchor.source must name the paper or repo the value comes from")


@dataclass(frozen=True)
class ExperimentConfig:
    task: str
    data: Any
    model: Any
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    anchor: AnchorConfig | None = None
    """Optional: the published number to compare to; changes nothing about training."""

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = _to_plain(self)
        if result.get("anchor") is None:
            result.pop("anchor", None)  # configs without one save as they always did
        return result

    def replace(self, **sections: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **sections)


SECTIONS = ("task", "data", "model", "optim", "trainer", "eval", "anchor")


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------- typing


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where it is lossless.

    YAML 1.1 reads ``1e-3`` as a string, so strings are accepted for numbers when they
    parse. Raises ConfigError naming ``key`` otherwise.
    """
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        if len(errors) == 1:  # ``X | None``: X's own message names the key that is wrong
            raise ConfigError(errors[0])
        raise ConfigError(f"config key {key!r}: {value!r} is not {_type_name(tp)}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"config key {key!r}: {value!r} is not one of {choices}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key {key!r}: expected {len(args)} values")
            return tuple(coerce(v, a, key) for v, a in zip(value, args, strict=True))
        inner = args[0] if args else Any
        items = [coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, key)
    return value


def build_dataclass(cls: Any, data: Any, prefix: str) -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, checking every key and type."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {prefix!r} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in fields(cls) if f.init]
    for key in data:
        if key not in valid:
            raise unknown_key(f"{prefix}.{key}", [f"{prefix}.{v}" for v in valid])
    kwargs = {k: coerce(v, hints[k], f"{prefix}.{k}") for k, v in data.items()}
    missing = [
        f.name
        for f in fields(cls)
        if f.init
        and f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"config key {prefix}.{missing[0]!r} is required")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config section {prefix!r}: {err}") from err
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def unknown_key(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}")


# ----------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"trainer.max_steps=20"`` -> (["trainer", "max_steps"], 20) (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. trainer.epochs=3)")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({err})") from err
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``a.b=c`` in a nested plain dict (a copy); types are checked later."""
    result = _deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return result


def _deepcopy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deepcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy(v) for v in value]
    return value


# ----------------------------------------------------------------------------- load/save


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping with a 'task' key")
    return data


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    atomic_write_text(Path(path), yaml.safe_dump(cfg.to_dict(), sort_keys=False))

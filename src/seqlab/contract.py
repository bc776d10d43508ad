"""The model contract: what the trainer, the tasks and the decoders need of a model.

Every task model is an ``nn.Module`` with ``loss(batch) -> LossOutput`` and
``predict(batch)``; its registry entry is a :class:`ModelSpec` (config class, build
function, batch collation), so a task never branches on the model type. Batches move to
the model's device through one function, :func:`move_to`. Autoregressive models follow
:class:`Decodable` (or, conditioned on an encoder memory, :class:`StepDecodable`),
which ``seqlab.decode`` drives.

This module is the bottom of the model stack: it imports nothing of seqlab.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, cast, runtime_checkable

import torch
from torch import Tensor, nn


class LossOutput(NamedTuple):
    """``loss``: mean loss over ``n`` items (tokens, examples) — what backward() uses."""

    loss: Tensor
    n: int


class ModelContract(Protocol):
    """What the trainer needs of a model (DESIGN.md, the model contract)."""

    def loss(self, batch: Any) -> LossOutput: ...

    def predict(self, batch: Any) -> Any: ...


def contract(model: nn.Module) -> ModelContract:
    """View an ``nn.Module`` as a task model (mypy cannot see ``loss`` on nn.Module)."""
    return cast(ModelContract, model)


class Decodable(Protocol):
    """An autoregressive model ``seqlab.decode`` can drive.

    start(prompt)            (B, T) ids        -> (logits (B, V), state)
    step(tokens, state)      (B,) ids, state   -> (logits (B, V), state)
    select_state(state, idx) keep/reorder batch rows of the state by index (K,)
    """

    def start(self, prompt: Tensor) -> tuple[Tensor, Any]: ...

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]: ...

    def select_state(self, state: Any, index: Tensor) -> Any: ...


class StepDecodable(Protocol):
    """A decoder conditioned on an encoder memory that ``seqlab.decode``'s batched
    greedy, sampling and beam search can drive (an encoder-decoder, a captioner).

    step(tokens, state, memory, mask) (B,) ids -> (logits (B, V), state, weights (B, S) | None)
    select_state(state, idx)          keep/reorder batch rows of the state by index (K,)

    ``memory`` (B, S, M) and ``mask`` (B, S) bool (True at real positions) are what the
    encoder produced; either may be None for a decoder that reads no memory.
    """

    def step(
        self, tokens: Tensor, state: Any, memory: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Any, Tensor | None]: ...

    def select_state(self, state: Any, index: Tensor) -> Any: ...


@runtime_checkable
class SourceSharedState(Protocol):
    """A :class:`StepDecodable` whose state also holds what is computed once per source
    (the attention score's projected keys), so that beam search reorders only the rest.

    reorder_hypotheses(state, idx)  as ``select_state``, for an index (K,) that moves each
                                    row only among the rows of its own source (beam
                                    search's parents): the per-source parts stay as they are
    """

    def reorder_hypotheses(self, state: Any, index: Tensor) -> Any: ...


@runtime_checkable
class EmbeddingPerturbable(Protocol):
    """A model whose input is a sequence of word embeddings, so that adversarial training
    (``optim.adversarial``, ``seqlab.nn.adversarial``) can perturb them.

    embed(batch)                            -> (embedded (B, T, E), mask (B, T) bool, True at words)
    logits_from_embeddings(batch, embedded) embedded (B, T, E) -> logits (B, K)
    loss_from_logits(batch, logits)         logits (B, K) -> LossOutput (what ``loss`` returns)

    ``loss(batch)`` must equal ``loss_from_logits(batch, logits_from_embeddings(batch,
    embed(batch)[0]))``.
    """

    def embed(self, batch: Any) -> tuple[Tensor, Tensor]: ...

    def logits_from_embeddings(self, batch: Any, embedded: Tensor) -> Tensor: ...

    def loss_from_logits(self, batch: Any, logits: Tensor) -> LossOutput: ...


@runtime_checkable
class RefitsOnTrainingData(Protocol):
    """A model with weights fitted apart from the gradient steps, on the training data, at
    each evaluation (the RAE's sentence classifier: a logistic regression on the frozen
    tree features, Socher et al. 2011). ``refit(batches)`` reads the training batches
    once and sets those weights; it leaves the model in the mode it found it in."""

    def refit(self, batches: Iterable[Any]) -> None: ...


@runtime_checkable
class Movable(Protocol):
    """A batch type that knows how to move its tensors: ``batch.to(device)`` returns a
    batch of the same type whose tensors are on ``device``."""

    def to(self, device: torch.device) -> Any: ...


B = TypeVar("B")


def move_to(batch: B, device: torch.device | str) -> B:
    """``batch`` with every tensor on ``device``: tensors, :class:`Movable` batches,
    dataclasses, NamedTuples, tuples, lists and dicts of them; anything else as it is."""
    device = torch.device(device)
    moved: Any
    if isinstance(batch, Tensor) or isinstance(batch, Movable) and not isinstance(batch, type):
        moved = batch.to(device)
    elif dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            f.name: move_to(getattr(batch, f.name), device)
            for f in dataclasses.fields(batch)
            if f.init
        }
        moved = dataclasses.replace(batch, **changes)
    elif isinstance(batch, tuple) and hasattr(batch, "_fields"):
        moved = type(batch)(*(move_to(item, device) for item in batch))
    elif isinstance(batch, tuple | list):
        moved = type(batch)(move_to(item, device) for item in batch)
    elif isinstance(batch, dict):
        moved = {key: move_to(value, device) for key, value in batch.items()}
    else:
        moved = batch
    return cast(B, moved)


D = TypeVar("D")


@dataclass(frozen=True)
class ModelSpec(Generic[D]):
    """A model registry entry: the frozen config class (``model.name`` selects it), the
    function that builds the model from the experiment config and the task's prepared
    data ``D`` (an ``nn.Module`` for a gradient-trained task),
    and, where the model needs its own batching (tree models), the function that collates
    a list of examples into its batch type (``None``: the task's default batching)."""

    config: type
    build: Callable[[Any, D], Any]
    collate: Callable[[list[Any]], Any] | None = None

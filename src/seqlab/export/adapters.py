"""What is exported for each task and model: a registry of :class:`ExportAdapter`s.

An exported model takes and returns plain tensors, so each adapter wraps the task model in a
small module whose ``forward`` takes the batch's tensors by name (the names become the ONNX
input names) and calls the model's own code: the classifiers' ``logits``, the tagger's
``emissions``, the memory network, the language model's ``forward`` with its state. Padded,
packed recurrent layers export as they run (``Recurrent`` packs by ``lengths``, which the
ONNX exporter maps to the LSTM/GRU ops' ``sequence_lens``), so a batch of sentences of
different lengths gives the same numbers as in PyTorch.

Axes are named: ``B`` batch, ``T`` time (words), ``C`` characters per word, ``M`` memories,
``W`` words per memory, ``L`` question words, ``S`` recurrent layers x directions; the sizes
that follow the model (``V`` vocabulary, ``K`` labels / tags, ``H`` hidden, ``HOPS``) are
fixed numbers in the exported graph.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from seqlab.data.batching import Padded
from seqlab.models.classifier import ClassifyBatch, SentenceClassifier, TextCNN
from seqlab.models.memn2n import MemN2N
from seqlab.models.rnn_lm import RNNLM
from seqlab.models.tagger import Tagger, TaggerBatch
from seqlab.nn.conv import apply_max_norm
from seqlab.registry import Registry


@dataclass(frozen=True)
class TensorSpec:
    """A named input or output: ``dims`` names each axis (``"B"``, ``"T"``: dynamic)."""

    name: str
    dims: tuple[str, ...]
    dtype: str = "int64"

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axis -> name for the axes whose size changes from batch to batch."""
        return {i: d for i, d in enumerate(self.dims) if d in DYNAMIC}


DYNAMIC = frozenset({"B", "T", "C", "M", "W", "L"})
"""Axis names whose size varies between calls."""


@dataclass(frozen=True)
class ExportAdapter:
    """How one task model is exported.

    ``wrap(model)``: the module that is traced (tensors in, a tuple of tensors out);
    ``inputs(model)`` / ``outputs(model)``: their specs, in ``forward``'s order;
    ``example(model, lengths, generator)``: one batch of ``len(lengths)`` examples, example
    ``b`` of length ``lengths[b]`` (words, memories or steps), as ``forward``'s arguments.
    """

    wrap: Callable[[nn.Module], nn.Module]
    inputs: Callable[[nn.Module], tuple[TensorSpec, ...]]
    outputs: Callable[[nn.Module], tuple[TensorSpec, ...]]
    example: Callable[[nn.Module, Sequence[int], torch.Generator], tuple[Tensor, ...]]


def _mask(lengths: Tensor, steps: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True at real steps."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def _padded_ids(
    vocab_size: int, lengths: Sequence[int], generator: torch.Generator, low: int = 2
) -> tuple[Tensor, Tensor]:
    """Random word ids in ``low..V-1`` (B, T), 0 after each length, and the lengths (B,)."""
    steps = max(lengths)
    ids = torch.randint(low, max(vocab_size, low + 1), (len(lengths), steps), generator=generator)
    lengths_t = torch.tensor(list(lengths), dtype=torch.long)
    return ids.masked_fill(~_mask(lengths_t, steps), 0), lengths_t


# ----------------------------------------------------------------------------- classifiers


class ClassifierExport(nn.Module):
    """``forward(ids (B, T), lengths (B,)) -> logits (B, K)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = cast(SentenceClassifier, model)

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor]:
        words = Padded(ids, lengths, _mask(lengths, ids.shape[1]))
        return (self.model.logits(ClassifyBatch(words, lengths)),)


def _classifier_example(
    model: nn.Module, lengths: Sequence[int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    embedding = cast(SentenceClassifier, model).embedding
    return _padded_ids(embedding.num_embeddings, lengths, generator)


def _cnn_export(model: nn.Module) -> nn.Module:
    """The text CNN rescales its output rows to ``max_norm`` at every forward (in place, a
    no-op once done); the exported copy has it done once, so the graph holds no in-place
    update of a weight."""
    cnn = copy.deepcopy(cast(TextCNN, model))
    if cnn.cfg.max_norm is not None:
        apply_max_norm(cnn.out.weight, cnn.cfg.max_norm)
        cnn.cfg = dataclasses.replace(cnn.cfg, max_norm=None)
    return ClassifierExport(cnn)


def _classifier_specs(model: nn.Module) -> tuple[TensorSpec, ...]:
    return (TensorSpec("ids", ("B", "T")), TensorSpec("lengths", ("B",)))


RNN_CLASSIFIER = ExportAdapter(
    wrap=ClassifierExport,
    inputs=_classifier_specs,
    outputs=lambda model: (TensorSpec("logits", ("B", "K"), "float32"),),
    example=_classifier_example,
)
CNN_CLASSIFIER = ExportAdapter(
    wrap=_cnn_export,
    inputs=_classifier_specs,
    outputs=lambda model: (TensorSpec("logits", ("B", "K"), "float32"),),
    example=_classifier_example,
)


# ----------------------------------------------------------------------------- tagger


class TaggerExport(nn.Module):
    """``forward(ids (B, T), lengths (B,)[, chars (B, T, C), char_lengths (B, T)]) ->
    emissions (B, T, K)`` (and a CRF's ``transitions`` (K, K), ``start`` (K,), ``end`` (K,),
    which Viterbi decoding needs besides the emissions)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = cast(Tagger, model)

    def forward(self, ids: Tensor, lengths: Tensor, *chars: Tensor) -> tuple[Tensor, ...]:
        words = Padded(ids, lengths, _mask(lengths, ids.shape[1]))
        if chars:
            char_ids, char_lengths = chars
        else:  # a tagger without character features: the batch still has the fields
            char_ids = ids.new_zeros(ids.shape[0], ids.shape[1], 1)
            char_lengths = ids.new_ones(ids.shape)
        emissions = self.model.emissions(TaggerBatch(words, char_ids, char_lengths, ids))
        crf = self.model.crf
        if crf is None:
            return (emissions,)
        return emissions, crf.transitions * 1, crf.start * 1, crf.end * 1


def _tagger_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    words = (TensorSpec("ids", ("B", "T")), TensorSpec("lengths", ("B",)))
    if cast(Tagger, model).chars is None:
        return words
    return (*words, TensorSpec("chars", ("B", "T", "C")), TensorSpec("char_lengths", ("B", "T")))


def _tagger_outputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    emissions = TensorSpec("emissions", ("B", "T", "K"), "float32")
    if cast(Tagger, model).crf is None:
        return (emissions,)
    return (
        emissions,
        TensorSpec("transitions", ("K", "K"), "float32"),
        TensorSpec("start", ("K",), "float32"),
        TensorSpec("end", ("K",), "float32"),
    )


def _tagger_example(
    model: nn.Module, lengths: Sequence[int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    tagger = cast(Tagger, model)
    ids, lengths_t = _padded_ids(tagger.embedding.num_embeddings, lengths, generator)
    if tagger.chars is None:
        return ids, lengths_t
    width = 6  # characters per word slot; each word uses 1..6 of them
    num_chars = tagger.chars.embedding.num_embeddings
    chars = torch.randint(2, max(num_chars, 3), (*ids.shape, width), generator=generator)
    char_lengths = torch.randint(1, width + 1, ids.shape, generator=generator)
    char_lengths = char_lengths * (ids != 0)  # 0 characters at padded words
    inside = torch.arange(width) < char_lengths.unsqueeze(-1)
    return ids, lengths_t, chars.masked_fill(~inside, 0), char_lengths


TAGGER = ExportAdapter(
    wrap=TaggerExport, inputs=_tagger_inputs, outputs=_tagger_outputs, example=_tagger_example
)


# ----------------------------------------------------------------------------- language model


class LMExport(nn.Module):
    """``forward(ids (B, T), h0 (S, B, H)[, c0 (S, B, H)]) -> logits (B, T, V), h (S, B, H)
    [, c (S, B, H)]``: one window of the language model from a given state, as generation
    and streaming evaluation use it (``c`` for LSTM cells only)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        lm = cast(RNNLM, model)
        # the model's layers, run by the model's own ``forward``, but not the model: its
        # training-time carry between BPTT windows (``_extra_state``) is no weight and
        # the TorchScript-based exporters cannot hold it
        self.embedding, self.dropout, self.rnn, self.decoder = (
            lm.embedding,
            lm.dropout,
            lm.rnn,
            lm.decoder,
        )
        self._forward: Any = type(lm).forward

    def forward(self, ids: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        given = (state[0], state[1]) if len(state) == 2 else state[0]
        logits, final = self._forward(self, ids, given)
        return (logits, *final) if isinstance(final, tuple) else (logits, final)


def _lm_is_lstm(model: nn.Module) -> bool:
    return cast(RNNLM, model).rnn.mode == "LSTM"


def _lm_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    state = [TensorSpec("h0", ("S", "B", "H"), "float32")]
    if _lm_is_lstm(model):
        state.append(TensorSpec("c0", ("S", "B", "H"), "float32"))
    return (TensorSpec("ids", ("B", "T")), *state)


def _lm_outputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    state = [TensorSpec("h", ("S", "B", "H"), "float32")]
    if _lm_is_lstm(model):
        state.append(TensorSpec("c", ("S", "B", "H"), "float32"))
    return (TensorSpec("logits", ("B", "T", "V"), "float32"), *state)


def _lm_example(
    model: nn.Module, lengths: Sequence[int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    """A window of ``max(lengths)`` steps for ``len(lengths)`` streams from a random state
    (a language model reads full windows: every row has the same length)."""
    lm = cast(RNNLM, model)
    steps, batch = max(lengths), len(lengths)
    ids = torch.randint(0, lm.embedding.num_embeddings, (batch, steps), generator=generator)
    shape = (lm.rnn.num_layers * lm.rnn.num_directions, batch, lm.rnn.hidden_size)
    state = [
        torch.randn(shape, generator=generator) * 0.5 for _ in range(2 if _lm_is_lstm(lm) else 1)
    ]
    return (ids, *state)


LANGUAGE_MODEL = ExportAdapter(
    wrap=LMExport, inputs=_lm_inputs, outputs=_lm_outputs, example=_lm_example
)


# ----------------------------------------------------------------------------- memory network


class MemN2NExport(nn.Module):
    """``forward(story (B, M, W), question (B, L)) -> logits (B, V), attention (B, HOPS, M)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = cast(MemN2N, model)

    def forward(self, story: Tensor, question: Tensor) -> tuple[Tensor, Tensor]:
        logits, attention = self.model.memory(story, question)
        return logits, attention


def _memn2n_example(
    model: nn.Module, lengths: Sequence[int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    """Story ``b`` holds ``lengths[b]`` memories (left-aligned, the rest 0) of up to 5
    words; questions of up to 4 words."""
    memn2n = cast(MemN2N, model)
    vocab = memn2n.memory.embeddings.shape[1]
    memories, width = max(lengths), 5
    story = torch.randint(1, vocab, (len(lengths), memories, width), generator=generator)
    words = torch.randint(1, width + 1, (len(lengths), memories), generator=generator)
    story = story.masked_fill(~(torch.arange(width) < words.unsqueeze(-1)), 0)
    real = _mask(torch.tensor(list(lengths)), memories)
    story = story * real.unsqueeze(-1)
    question = torch.randint(1, vocab, (len(lengths), 4), generator=generator)
    question[:, 3] = 0  # one padded question slot
    return story, question


MEMN2N = ExportAdapter(
    wrap=MemN2NExport,
    inputs=lambda model: (TensorSpec("story", ("B", "M", "W")), TensorSpec("question", ("B", "L"))),
    outputs=lambda model: (
        TensorSpec("logits", ("B", "V"), "float32"),
        TensorSpec("attention", ("B", "HOPS", "M"), "float32"),
    ),
    example=_memn2n_example,
)


EXPORTS: Registry[ExportAdapter] = Registry("exportable model (task/model)")
EXPORTS.register("lm_rnn/rnn", LANGUAGE_MODEL)
EXPORTS.register("classify/cnn", CNN_CLASSIFIER)
EXPORTS.register("classify/rnn", RNN_CLASSIFIER)
EXPORTS.register("tagging/tagger", TAGGER)
EXPORTS.register("babi_qa/memn2n", MEMN2N)

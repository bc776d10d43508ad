"""What is exported for each task and model: a registry of :class:`ExportAdapter`s (one
graph) and :class:`ExportGraphs` (several graphs a client runs in turn).

An exported model takes and returns plain tensors, so each adapter wraps the task model in a
small module whose ``forward`` takes the batch's tensors by name (the names become the ONNX
input names) and calls the model's own code: the classifiers' ``logits``, the tagger's
``emissions``, the memory network, the language models' ``forward`` (the recurrent one with
its state), the encoder-decoder's ``encode`` and ``step``. Padded, packed recurrent layers
export as they run (``Recurrent`` packs by ``lengths``, which the ONNX exporter maps to the
LSTM/GRU ops' ``sequence_lens``), so a batch of sentences of different lengths gives the
same numbers as in PyTorch.

An encoder-decoder is two graphs: ``encoder`` (source -> memory and the decoder's first
state) and ``decoder_step`` (one output token from the previous one and the state; the
decoder's Python loop over steps, greedy or beam search, stays with the client, as
``seqlab.decode`` runs it).

Axes are named: ``B`` batch, ``T`` time (words, source tokens), ``C`` characters per word,
``M`` memories, ``W`` words per memory, ``L`` question words, ``S`` recurrent layers x
directions; the sizes that follow the model (``V`` vocabulary, ``K`` labels / tags, ``H``
hidden, ``D`` encoder output, ``A`` attention keys, ``HOPS``) are fixed numbers in the
exported graph.
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
from seqlab.models.seq2seq import Seq2Seq
from seqlab.models.tagger import Tagger, TaggerBatch
from seqlab.models.transformer_lm import TransformerLM
from seqlab.nn.conv import apply_max_norm
from seqlab.nn.decoder import DecoderState
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


@dataclass(frozen=True)
class ExportGraphs:
    """A model exported as several graphs: ``parts`` holds ``(name, adapter)`` pairs in the
    order a client runs them; each is written to ``{name}{suffix}`` and verified alone."""

    parts: tuple[tuple[str, ExportAdapter], ...]


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


# ----------------------------------------------------------------------------- transformer LM


class TransformerLMExport(nn.Module):
    """``forward(ids (B, T)) -> logits (B, T, V)``: one causal window of at most
    ``block_size`` tokens (the model carries no state between windows)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = cast(TransformerLM, model)

    def forward(self, ids: Tensor) -> tuple[Tensor]:
        return (self.model(ids)[0],)


def _transformer_example(
    model: nn.Module, lengths: Sequence[int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    """A window of ``max(lengths)`` steps (every row full, as the LM reads windows)."""
    vocab = cast(TransformerLM, model).embedding.num_embeddings
    return (torch.randint(0, vocab, (len(lengths), max(lengths)), generator=generator),)


TRANSFORMER_LM = ExportAdapter(
    wrap=TransformerLMExport,
    inputs=lambda model: (TensorSpec("ids", ("B", "T")),),
    outputs=lambda model: (TensorSpec("logits", ("B", "T", "V"), "float32"),),
    example=_transformer_example,
)


# ----------------------------------------------------------------------------- encoder-decoder


def _state_names(model: nn.Module) -> tuple[str, ...]:
    """The decoder state's tensors, flattened: ``h`` (S, B, H), an LSTM's ``c``, input
    feeding's ``feed`` (B, H), the attention's precomputed ``keys`` (B, T, A)."""
    seq2seq = cast(Seq2Seq, model)
    names = ["h"]
    if seq2seq.cfg.cell == "lstm":
        names.append("c")
    if seq2seq.decoder.input_feeding:
        names.append("feed")
    attention = seq2seq.decoder.attention
    if attention is not None:
        probe = torch.zeros(1, 1, seq2seq.decoder.memory_size)
        if attention.project_keys(probe) is not None:  # type: ignore[operator]
            names.append("keys")
    return tuple(names)


def _state_specs(model: nn.Module, suffix: str = "") -> tuple[TensorSpec, ...]:
    dims = {"h": ("S", "B", "H"), "c": ("S", "B", "H"), "feed": ("B", "H"), "keys": ("B", "T", "A")}
    return tuple(TensorSpec(name + suffix, dims[name], "float32") for name in _state_names(model))


def _flat_state(state: DecoderState) -> list[Tensor]:
    hidden = list(state.hidden) if isinstance(state.hidden, tuple) else [state.hidden]
    return hidden + [t for t in (state.feed, state.keys) if t is not None]


def _attends(model: nn.Module) -> bool:
    return cast(Seq2Seq, model).decoder.attention is not None


class Seq2SeqEncoderExport(nn.Module):
    """``forward(source (B, T), lengths (B,)) -> memory (B, T, D), h (S, B, H)[, c][, feed
    (B, H)][, keys (B, T, A)]``: ``Seq2Seq.encode``, the decoder's first state flattened."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = cast(Seq2Seq, model)

    def forward(self, source: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        padded = Padded(source, lengths, _mask(lengths, source.shape[1]))
        memory, _, state = self.model.encode(padded)
        return (memory, *_flat_state(state))


class Seq2SeqStepExport(nn.Module):
    """``forward(tokens (B,), [memory (B, T, D), lengths (B,),] h[, c][, feed][, keys]) ->
    logits (B, V), h'[, c'][, feed'][, weights (B, T)]``: ``Seq2Seq.step``, one output token
    for each row (memory and lengths only when the decoder attends; ``keys`` do not change
    from step to step, so they are not returned)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = cast(Seq2Seq, model)
        self.names = _state_names(model)
        self.attends = _attends(model)

    def forward(self, tokens: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
        memory: Tensor | None = None
        mask: Tensor | None = None
        if self.attends:
            memory, lengths, *rest = tensors
            mask = _mask(lengths, memory.shape[1])
        else:
            rest = list(tensors)
        state = dict(zip(self.names, rest, strict=True))
        hidden = (state["h"], state["c"]) if "c" in state else state["h"]
        given = DecoderState(hidden, state.get("feed"), state.get("keys"))
        logits, new, weights = self.model.step(tokens, given, memory, mask)
        out = [logits, *_flat_state(new._replace(keys=None))]
        return (*out, weights) if weights is not None else tuple(out)


def _encoder_example(
    model: nn.Module, lengths: Sequence[int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    vocab = cast(Seq2Seq, model).source_embedding.num_embeddings
    return _padded_ids(vocab, lengths, generator)


def _step_example(
    model: nn.Module, lengths: Sequence[int], generator: torch.Generator
) -> tuple[Tensor, ...]:
    """The state the encoder gives for random sources of ``lengths`` tokens (the hidden
    state moved off it a little, as after some steps) and random previous tokens."""
    seq2seq = cast(Seq2Seq, model)
    source, lengths_t = _encoder_example(model, lengths, generator)
    with torch.no_grad():
        memory, _, state = seq2seq.encode(Padded(source, lengths_t, _mask(lengths_t, max(lengths))))
    flat = _flat_state(state)
    flat[0] = flat[0] + 0.1 * torch.randn(flat[0].shape, generator=generator)
    tokens = torch.randint(0, seq2seq.decoder.vocab_size, (len(lengths),), generator=generator)
    if not _attends(model):
        return (tokens, *flat)
    return (tokens, memory, lengths_t, *flat)


def _step_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    tokens = TensorSpec("tokens", ("B",))
    if not _attends(model):
        return (tokens, *_state_specs(model))
    memory = (TensorSpec("memory", ("B", "T", "D"), "float32"), TensorSpec("lengths", ("B",)))
    return (tokens, *memory, *_state_specs(model))


def _step_outputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    state = tuple(spec for spec in _state_specs(model, "_next") if spec.name != "keys_next")
    logits = TensorSpec("logits", ("B", "V"), "float32")
    if not _attends(model):
        return (logits, *state)
    return (logits, *state, TensorSpec("weights", ("B", "T"), "float32"))


SEQ2SEQ = ExportGraphs(
    parts=(
        (
            "encoder",
            ExportAdapter(
                wrap=Seq2SeqEncoderExport,
                inputs=lambda model: (
                    TensorSpec("source", ("B", "T")),
                    TensorSpec("lengths", ("B",)),
                ),
                outputs=lambda model: (
                    TensorSpec("memory", ("B", "T", "D"), "float32"),
                    *_state_specs(model),
                ),
                example=_encoder_example,
            ),
        ),
        (
            "decoder_step",
            ExportAdapter(
                wrap=Seq2SeqStepExport,
                inputs=_step_inputs,
                outputs=_step_outputs,
                example=_step_example,
            ),
        ),
    )
)


EXPORTS: Registry[ExportAdapter | ExportGraphs] = Registry("exportable model (task/model)")
NOT_FAITHFUL: dict[str, str] = {
    "speech/las": "its pyramidal listener runs explicit per-step LSTM loops (force_explicit) "
    "and stacks frames by a Python test of the length's parity, so a traced graph would "
    "hold one utterance length",
    **{
        f"tree_sentiment/{name}": "its computation follows each sentence's tree, which a "
        "traced graph would fix to the example's tree"
        for name in ("rae", "recnn", "rntn", "treelstm")
    },
}
"""Models that have no export because tracing cannot reproduce them, and why."""


EXPORTS.register("lm_rnn/rnn", LANGUAGE_MODEL)
EXPORTS.register("lm_rnn/transformer", TRANSFORMER_LM)
EXPORTS.register("translate/seq2seq", SEQ2SEQ)
EXPORTS.register("classify/cnn", CNN_CLASSIFIER)
EXPORTS.register("classify/rnn", RNN_CLASSIFIER)
EXPORTS.register("tagging/tagger", TAGGER)
EXPORTS.register("babi_qa/memn2n", MEMN2N)

"""The task endpoints of the service: one :class:`EndpointSpec` per task, in ``ENDPOINTS``.

A spec names the route, the request schema (built for the service's limits, so that the
OpenAPI schema states them: lengths, the generation cap) and the response schema, a
``check`` of one request against what the schema cannot say (the run's vocabulary; a
failed check is a 422 naming the field), and ``run``, which answers a batch of checked
requests with one model call where the task allows it. Serving a new task is
one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from math import isfinite
from typing import Annotated, Any, Protocol, cast

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from torch.nn import functional as F

from seqlab.data.readers import parse_babi
from seqlab.decode import Decoded, Stream, sample_streams
from seqlab.errors import SeqlabError
from seqlab.evaluation import LoadedRun
from seqlab.registry import Registry
from seqlab.serve.settings import ServeSettings
from seqlab.tasks.babi_qa import BabiQATask, encode
from seqlab.tasks.rnn_lm import decodable, prompt_ids, token_text
from seqlab.tasks.sentence_classify import SentenceClassifyTask
from seqlab.tasks.tagging import TaggingTask
from seqlab.tasks.translate import TranslateData, TranslateTask, encode_line
from seqlab.train.device import module_device


class InputError(ValueError):
    """A request the service cannot answer: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _number(value: Any) -> Any:
    """JSON numbers only: ``true`` or ``"5"`` are not taken for 1 or 5."""
    if isinstance(value, bool | str):
        raise ValueError("expected a number")
    return value


Integer = Annotated[int, BeforeValidator(_number)]
Number = Annotated[float, BeforeValidator(_number)]
NOT_BLANK = r"[^ \t\n\r]"
"""Pattern of a text that is not blank: at least one character besides ASCII spaces, TABs
and newlines. (``\\w`` or ``\\S`` would mean different things in the JSON-Schema regex
dialect clients use and in the validator's; an explicit class means the same in both.)"""
GREEDY_BELOW = 1e-3
"""Temperatures below this decode greedily (their limit; dividing the logits by a tinier
one overflows)."""


@dataclass(frozen=True)
class EndpointSpec:
    """One task's endpoint (see the module docstring). ``kind`` tells the playground page
    which form to show; ``example`` is a request body for the docs and the page."""

    path: str
    summary: str
    request: Callable[[ServeSettings], type[BaseModel]]
    response: type[BaseModel]
    check: Callable[[LoadedRun, Any, ServeSettings], None]
    run: Callable[[LoadedRun, Sequence[Any]], list[Any]]
    kind: str
    example: dict[str, Any]


# ----------------------------------------------------------------------------- /predict


def _text_request(settings: ServeSettings) -> type[BaseModel]:
    class TextRequest(Strict):
        text: str = Field(
            min_length=1,
            max_length=settings.max_text_chars,
            pattern=NOT_BLANK,
            description="A sentence; tokens are split on whitespace.",
        )

    return TextRequest


class TextRequest(Protocol):
    """What every ``_text_request`` model has (for the type checker)."""

    text: str


class Prediction(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float]


def _schema_only(run: LoadedRun, request: Any, settings: ServeSettings) -> None:
    """Nothing beyond the schema (lengths, at least one word) to check."""


def _classify(run: LoadedRun, requests: Sequence[TextRequest]) -> list[Prediction]:
    task = cast(SentenceClassifyTask, run.task)
    lower = run.cfg.data.lowercase
    tokens = [(r.text.lower() if lower else r.text).split() for r in requests]
    batch = task.make_batch(run.cfg, run.data, tokens, [0] * len(tokens))
    with torch.inference_mode():
        logits = run.model.logits(batch.to(module_device(run.model)))  # type: ignore[operator]
        probs = F.softmax(logits.float(), dim=-1).cpu()
    labels: list[str] = run.data.labels
    results = []
    for row in probs.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        results.append(
            Prediction(
                label=labels[best],
                probability=row[best],
                probabilities=dict(zip(labels, row, strict=True)),
            )
        )
    return results


PREDICT = EndpointSpec(
    path="/predict",
    summary="Classify a sentence: the label and every label's probability.",
    request=_text_request,
    response=Prediction,
    check=_schema_only,
    run=_classify,
    kind="classify",
    example={"text": "a fine and moving film"},
)


# ----------------------------------------------------------------------------- /tag


class Tagged(BaseModel):
    tokens: list[str]
    tags: list[str]


def _tag(run: LoadedRun, requests: Sequence[TextRequest]) -> list[Tagged]:
    task = cast(TaggingTask, run.task)
    words = [tuple(r.text.split()) for r in requests]
    with torch.inference_mode():
        tags = task.tag_sentences(run.cfg, run.model, run.data, words)
    return [Tagged(tokens=list(w), tags=t) for w, t in zip(words, tags, strict=True)]


TAG = EndpointSpec(
    path="/tag",
    summary="Tag each whitespace token of a sentence.",
    request=_text_request,
    response=Tagged,
    check=_schema_only,
    run=_tag,
    kind="tag",
    example={"text": "The dog runs ."},
)


# ----------------------------------------------------------------------------- /generate


class GenerateRequest(Protocol):
    """What every ``_generate_request`` model has."""

    prompt: str
    max_tokens: int
    temperature: float
    top_k: int
    top_p: float
    seed: int


def _generate_request(settings: ServeSettings) -> type[BaseModel]:
    cap = settings.max_generate_tokens

    class GenerateRequest(Strict):
        prompt: str = Field(
            "",
            max_length=settings.max_text_chars,
            description="Text to continue; empty: start a new sentence.",
        )
        max_tokens: Integer = Field(min(50, cap), ge=1, le=cap, description="Tokens to generate.")
        temperature: Number = Field(
            0.8, ge=0.0, le=10.0, description=f"Below {GREEDY_BELOW}: greedy."
        )
        top_k: Integer = Field(0, ge=0, description="Sample from the k most likely (0: all).")
        top_p: Number = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
        seed: Integer = Field(0, ge=0, le=2**31 - 1)

    return GenerateRequest


class Generation(BaseModel):
    prompt: str
    text: str
    """The generated continuation (without the prompt)."""
    tokens: int


def _check_generate(run: LoadedRun, request: GenerateRequest, settings: ServeSettings) -> None:
    try:
        prompt_ids(run.data, request.prompt)
    except SeqlabError as err:
        raise InputError("prompt", str(err)) from None


def _generate(run: LoadedRun, requests: Sequence[GenerateRequest]) -> list[Generation]:
    """All prompts decode together (:func:`~seqlab.decode.sample_streams`: one batched
    model step for every stream still going), each with its own options and seeded
    generator, so each gets the text ``seqlab generate`` gives it alone."""
    device = module_device(run.model)
    streams = [
        Stream(
            prompt_ids(run.data, r.prompt).to(device),
            r.max_tokens,
            temperature=r.temperature if r.temperature >= GREEDY_BELOW else 0.0,
            top_k=r.top_k,
            top_p=r.top_p,
            generator=torch.Generator().manual_seed(r.seed),
        )
        for r in requests
    ]
    with torch.inference_mode():
        tokens = sample_streams(decodable(run.model), streams)
    return [
        Generation(
            prompt=r.prompt,
            text="".join(token_text(run.data, i) for i in ids),
            tokens=len(ids),
        )
        for r, ids in zip(requests, tokens, strict=True)
    ]


GENERATE = EndpointSpec(
    path="/generate",
    summary="Continue a prompt with the language model (sampling, seeded).",
    request=_generate_request,
    response=Generation,
    check=_check_generate,
    run=_generate,
    kind="generate",
    example={"prompt": "the", "max_tokens": 20, "temperature": 0.8, "seed": 0},
)


# ----------------------------------------------------------------------------- /answer


class StoryRequest(Protocol):
    """What every ``_story_request`` model has."""

    story: list[str]
    question: str


def _story_request(settings: ServeSettings) -> type[BaseModel]:
    Statement = Annotated[
        str, Field(min_length=1, max_length=settings.max_text_chars, pattern=NOT_BLANK)
    ]

    class StoryRequest(Strict):
        story: list[Statement] = Field(
            min_length=1,
            max_length=settings.max_story_sentences,
            description="The statements, oldest first (a trailing '?' is dropped).",
        )
        question: str = Field(
            min_length=1,
            max_length=settings.max_text_chars,
            pattern=NOT_BLANK,
            description="A question about the story.",
        )

    return StoryRequest


class Answer(BaseModel):
    answer: str
    memories: list[str]
    """The statements in memory (the most recent ``memory_size``), oldest first."""
    attention: list[list[float]]
    """(hops, memories): each hop's attention over ``memories``."""


def _statement(text: str) -> str:
    return " ".join(text.split()).rstrip("?").strip() or "."


def _answer(run: LoadedRun, requests: Sequence[StoryRequest]) -> list[Answer]:
    task = cast(BabiQATask, run.task)
    memory_size = run.cfg.data.memory_size
    examples, encoded = [], []
    for r in requests:
        # one line each: TABs and a trailing '?' would make a statement a question
        lines = [f"{i} {_statement(s)}" for i, s in enumerate(r.story, 1)]
        lines.append(f"{len(lines) + 1} {_statement(r.question)}?")
        (example,) = parse_babi(enumerate(lines, 1), "<request>", answers=False)
        examples.append(example)
        encoded.append(encode(example, run.data.vocab, memory_size, 0, "<request>"))
    with torch.inference_mode():
        answers = task.answer(run.cfg, run.model, run.data, encoded)
    results = []
    for example, (answer, attention) in zip(examples, answers, strict=True):
        kept = list(example.story[len(example.story) - attention.shape[1] :])
        results.append(Answer(answer=answer, memories=kept, attention=attention.tolist()))
    return results


ANSWER = EndpointSpec(
    path="/answer",
    summary="Answer a question about a story (bAbI), with each hop's attention.",
    request=_story_request,
    response=Answer,
    check=_schema_only,
    run=_answer,
    kind="answer",
    example={
        "story": ["Mary went to the kitchen.", "John went to the garden."],
        "question": "Where is Mary?",
    },
)


# ----------------------------------------------------------------------------- /translate


class TranslateRequest(Protocol):
    """What every ``_translate_request`` model has."""

    source: list[str]
    beam: int | None
    max_len: int
    attention: bool


def _translate_request(settings: ServeSettings) -> type[BaseModel]:
    Sentence = Annotated[
        str, Field(min_length=1, max_length=settings.max_text_chars, pattern=NOT_BLANK)
    ]
    cap = settings.max_generate_tokens
    Beam = Annotated[int, Field(ge=1, le=settings.max_beam), BeforeValidator(_number)]

    class TranslateRequest(Strict):
        source: list[Sentence] = Field(
            min_length=1,
            max_length=settings.max_sentences,
            description="Sentences to translate (raw text: the run's tokenizer splits them).",
        )
        beam: Beam | None = Field(
            None, description="Beam width (1: greedy); default: the run's data.beam_size."
        )
        max_len: Integer = Field(
            cap,
            ge=1,
            le=cap,
            description="Most target tokens of an output (the run's length rule, "
            "ratio x source tokens + offset, applies as well).",
        )
        attention: StrictBool = Field(
            False, description="Return each output token's attention over the source tokens."
        )

    return TranslateRequest


class Translation(BaseModel):
    source: str
    translation: str
    """The detokenised output."""
    source_tokens: list[str]
    target_tokens: list[str]
    """The output tokens, ``</s>`` last when the output ended (not cut at its length)."""
    finished: bool
    logprob: float | None
    """log P(output | source) under the model."""
    attention: list[list[float]] | None = None
    """(target tokens, source tokens) when asked and the model attends; else null."""


class Translations(BaseModel):
    translations: list[Translation]
    beam: int


def _source_tokens(run: LoadedRun, text: str) -> list[str]:
    data = run.data
    return list(data.source_tokenizer.encode(text))[: run.cfg.data.max_source_length]


def _check_translate(run: LoadedRun, request: TranslateRequest, settings: ServeSettings) -> None:
    for i, text in enumerate(request.source):
        if not _source_tokens(run, text):
            raise InputError(f"source[{i}]", "no tokens left after the run's tokenizer")


def _translation(
    task: TranslateTask,
    data: TranslateData,
    text: str,
    source: list[str],
    output: Decoded,
    attention: bool,
) -> Translation:
    target = [data.target_vocab.itos[t] for t in output.tokens]
    target += ["</s>"] if output.finished else []
    weights = None
    if attention and output.attention is not None:
        weights = output.attention[:, : len(source)].tolist()  # the padding's columns are 0
    return Translation(
        source=text,
        translation=task.detokenise(data, output.tokens),
        source_tokens=source,
        target_tokens=target,
        finished=output.finished,
        logprob=output.logprob if isfinite(output.logprob) else None,
        attention=weights,
    )


def _translate(run: LoadedRun, requests: Sequence[TranslateRequest]) -> list[Translations]:
    """Requests with the same beam and length cap decode together: every sentence of them
    in the task's batches (one encoder pass and one batched search per batch)."""
    task = cast(TranslateTask, run.task)
    data = run.data
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(requests):
        beam = r.beam if r.beam is not None else run.cfg.data.beam_size
        groups.setdefault((beam, r.max_len), []).append(i)
    results: list[Translations | None] = [None] * len(requests)
    for (beam, max_len), chosen in groups.items():
        cfg = replace(run.cfg, data=replace(run.cfg.data, beam_size=beam))
        texts = [text for i in chosen for text in requests[i].source]
        tokens = [_source_tokens(run, text) for text in texts]
        ids = [encode_line(data.source_vocab, t)[0] for t in tokens]
        with torch.inference_mode():
            outputs = task.translate_ids(cfg, run.model, data, ids, limit=max_len)
        start = 0
        for i in chosen:
            rows = range(start, start + len(requests[i].source))
            start = rows.stop
            translations = [
                _translation(task, data, texts[j], tokens[j], outputs[j], requests[i].attention)
                for j in rows
            ]
            results[i] = Translations(translations=translations, beam=beam)
    return [r for r in results if r is not None]


TRANSLATE = EndpointSpec(
    path="/translate",
    summary="Translate sentences (greedy or beam search), with the attention if asked.",
    request=_translate_request,
    response=Translations,
    check=_check_translate,
    run=_translate,
    kind="translate",
    example={"source": ["Ein Hund läuft im Park."], "beam": 1, "attention": True},
)


ENDPOINTS: Registry[EndpointSpec] = Registry("served task")
ENDPOINTS.register("lm_rnn", GENERATE)
ENDPOINTS.register("classify", PREDICT)
ENDPOINTS.register("tagging", TAG)
ENDPOINTS.register("babi_qa", ANSWER)
ENDPOINTS.register("translate", TRANSLATE)

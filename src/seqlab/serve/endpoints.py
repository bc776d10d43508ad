"""The task endpoints of the service: one :class:`EndpointSpec` per task, in ``ENDPOINTS``.

A spec names the route, the request and response schemas (pydantic, so they are in the
OpenAPI schema), a ``check`` of one request against the service's limits and the run's
vocabulary (a failed check is a 422 naming the field), and ``run``, which answers a batch
of checked requests with one model call where the task allows it. Serving a new task is
one entry here (``/translate`` for translation is the next).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

from seqlab.data.readers import babi_tokens, parse_babi
from seqlab.errors import SeqlabError
from seqlab.evaluation import LoadedRun
from seqlab.registry import Registry
from seqlab.serve.settings import ServeSettings
from seqlab.tasks.babi_qa import BabiQATask, encode
from seqlab.tasks.rnn_lm import prompt_ids
from seqlab.tasks.sentence_classify import SentenceClassifyTask
from seqlab.tasks.tagging import TaggingTask
from seqlab.train.device import module_device


class InputError(ValueError):
    """A request the service cannot answer: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _text(field: str, value: str, settings: ServeSettings, *, empty_ok: bool = False) -> None:
    if not empty_ok and not value.strip():
        raise InputError(field, f"{field} is empty")
    if len(value) > settings.max_text_chars:
        raise InputError(
            field, f"{field} has {len(value)} characters; the limit is {settings.max_text_chars}"
        )
    if "\x00" in value:
        raise InputError(field, f"{field} holds a NUL character")


@dataclass(frozen=True)
class EndpointSpec:
    """One task's endpoint (see the module docstring). ``kind`` tells the playground page
    which form to show; ``example`` is a request body for the docs and the page."""

    path: str
    summary: str
    request: type[BaseModel]
    response: type[BaseModel]
    check: Callable[[LoadedRun, Any, ServeSettings], None]
    run: Callable[[LoadedRun, Sequence[Any]], list[Any]]
    kind: str
    example: dict[str, Any]


# ----------------------------------------------------------------------------- /predict


class TextRequest(Strict):
    text: str = Field(min_length=1, description="A sentence; tokens are split on whitespace.")


class Prediction(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float]


def _check_text(run: LoadedRun, request: TextRequest, settings: ServeSettings) -> None:
    _text("text", request.text, settings)


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
    request=TextRequest,
    response=Prediction,
    check=_check_text,
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
    request=TextRequest,
    response=Tagged,
    check=_check_text,
    run=_tag,
    kind="tag",
    example={"text": "The dog runs ."},
)


# ----------------------------------------------------------------------------- /generate


class GenerateRequest(Strict):
    prompt: str = Field("", description="Text to continue; empty: start a new sentence.")
    max_tokens: int = Field(50, ge=1, description="Tokens to generate (capped by the service).")
    temperature: float = Field(0.8, ge=0.0, le=10.0, description="0: greedy.")
    top_k: int = Field(0, ge=0, le=1_000_000, description="Sample from the k most likely (0: all).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int = Field(0, ge=0, le=2**63 - 1)


class Generation(BaseModel):
    prompt: str
    text: str
    """The generated continuation (without the prompt)."""
    tokens: int


def _check_generate(run: LoadedRun, request: GenerateRequest, settings: ServeSettings) -> None:
    _text("prompt", request.prompt, settings, empty_ok=True)
    if request.max_tokens > settings.max_generate_tokens:
        raise InputError(
            "max_tokens",
            f"max_tokens is {request.max_tokens}; this service generates at most "
            f"{settings.max_generate_tokens}",
        )
    try:
        prompt_ids(run.data, request.prompt)
    except SeqlabError as err:
        raise InputError("prompt", str(err)) from None


def _generate(run: LoadedRun, requests: Sequence[GenerateRequest]) -> list[Generation]:
    """Each prompt decodes alone (one sampling stream each, seeded)."""
    results = []
    for r in requests:
        with torch.inference_mode():
            pieces = list(
                run.generate(
                    prompt=r.prompt,
                    max_tokens=r.max_tokens,
                    temperature=r.temperature,
                    top_k=r.top_k,
                    top_p=r.top_p,
                    seed=r.seed,
                )
            )
        results.append(
            Generation(prompt=r.prompt, text="".join(pieces[1:]), tokens=len(pieces) - 1)
        )
    return results


GENERATE = EndpointSpec(
    path="/generate",
    summary="Continue a prompt with the language model (sampling, seeded).",
    request=GenerateRequest,
    response=Generation,
    check=_check_generate,
    run=_generate,
    kind="generate",
    example={"prompt": "the", "max_tokens": 20, "temperature": 0.8, "seed": 0},
)


# ----------------------------------------------------------------------------- /answer


class StoryRequest(Strict):
    story: list[str] = Field(min_length=1, description="The statements, oldest first.")
    question: str = Field(min_length=1, description="A question about the story.")


class Answer(BaseModel):
    answer: str
    memories: list[str]
    """The statements in memory (the most recent ``memory_size``), oldest first."""
    attention: list[list[float]]
    """(hops, memories): each hop's attention over ``memories``."""


def _check_story(run: LoadedRun, request: StoryRequest, settings: ServeSettings) -> None:
    if len(request.story) > settings.max_story_sentences:
        raise InputError(
            "story",
            f"story has {len(request.story)} statements; the limit is "
            f"{settings.max_story_sentences}",
        )
    for i, sentence in enumerate(request.story):
        _text(f"story[{i}]", sentence, settings)
        if sentence.rstrip().endswith("?") or "\t" in sentence:
            raise InputError(f"story[{i}]", f"story[{i}] is a question, not a statement")
        if not babi_tokens(sentence):
            raise InputError(f"story[{i}]", f"story[{i}] has no words")
    _text("question", request.question, settings)
    if "\t" in request.question or not babi_tokens(request.question):
        raise InputError("question", "question has no words (or holds a TAB)")


def _answer(run: LoadedRun, requests: Sequence[StoryRequest]) -> list[Answer]:
    task = cast(BabiQATask, run.task)
    memory_size = run.cfg.data.memory_size
    examples, encoded = [], []
    for r in requests:
        lines = [f"{i} {s.strip()}" for i, s in enumerate(r.story, 1)]
        lines.append(f"{len(lines) + 1} {r.question.strip().rstrip('?')}?")
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
    request=StoryRequest,
    response=Answer,
    check=_check_story,
    run=_answer,
    kind="answer",
    example={
        "story": ["Mary went to the kitchen.", "John went to the garden."],
        "question": "Where is Mary?",
    },
)


ENDPOINTS: Registry[EndpointSpec] = Registry("served task")
ENDPOINTS.register("lm_rnn", GENERATE)
ENDPOINTS.register("classify", PREDICT)
ENDPOINTS.register("tagging", TAG)
ENDPOINTS.register("babi_qa", ANSWER)

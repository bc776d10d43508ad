"""The FastAPI app of ``seqlab serve``: a loaded run behind ``/health``, ``/info``, its task's
endpoint and the playground page.

* The run is loaded once (:class:`~seqlab.evaluation.LoadedRun`); its model stays in eval
  mode with gradients off and is only read.
* Every request body is capped (``max_body_bytes``, 413) before it is parsed; a malformed
  or out-of-limits request is a 4xx with a message, never a 500.
* With an API key, every route but ``/health`` and the page's static files needs it
  (``X-API-Key`` or ``Authorization: Bearer``; 401 otherwise).
* ``/info`` shows the config, vocabulary size, labels and final metrics, with every value
  that looks like a file-system path cut to its file name.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seqlab import __version__
from seqlab.errors import SeqlabError
from seqlab.evaluation import LoadedRun
from seqlab.rundir import RunDir
from seqlab.serve.batching import MicroBatcher
from seqlab.serve.endpoints import ENDPOINTS, EndpointSpec, InputError
from seqlab.serve.settings import ServeSettings

STATIC = resources.files("seqlab.serve") / "static"
OPEN_PATHS = frozenset({"/health", "/", "/playground.js", "/playground.css"})
"""Routes that need no API key: the liveness probe and the page's files (no data)."""


class Problem(BaseModel):
    """An error that is not about one field: 401, 413."""

    detail: str


class Health(BaseModel):
    status: str
    requests: int
    batches: int
    largest_batch: int


class Info(BaseModel):
    task: str
    model: str
    endpoint: str
    kind: str
    example: dict[str, Any]
    vocab_size: int | None
    labels: list[str] | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    limits: dict[str, Any]
    seqlab: str


def strip_paths(value: Any) -> Any:
    """``value`` with every string that names a file-system location cut to its last part
    (``/data/sst/train.txt`` -> ``train.txt``); URLs (an anchor's source) stay whole."""
    if isinstance(value, dict):
        return {k: strip_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strip_paths(v) for v in value]
    if not isinstance(value, str) or "://" in value:  # numbers, URLs: as they are
        return value
    if "/" in value or "\\" in value or value.startswith("~"):
        return Path(value.replace("\\", "/")).name
    return value


def _run_info(run: LoadedRun, spec: EndpointSpec, settings: ServeSettings) -> Info:
    metrics_path = RunDir(run.run_dir).metrics
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    vocab = getattr(run.data, "vocab", None) or getattr(run.data, "target_vocab", None)
    labels = getattr(run.data, "labels", None) or getattr(run.data, "tags", None)
    limits = {k: v for k, v in asdict(settings).items() if k not in ("api_key", "host", "port")}
    return Info(
        task=run.cfg.task,
        model=run.cfg.model.name,
        endpoint=spec.path,
        kind=spec.kind,
        example=spec.example,
        vocab_size=len(vocab) if vocab is not None else None,
        labels=list(labels) if labels else None,
        config=strip_paths(run.cfg.to_dict()),
        metrics=strip_paths(metrics),
        limits=limits,
        seqlab=__version__,
    )


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 unread."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = JSONResponse(
            {"detail": f"request body over {self.limit} bytes"}, status_code=413
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await too_large(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await too_large(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _key_of(request: Request) -> str:
    given = request.headers.get("x-api-key", "")
    bearer = request.headers.get("authorization", "")
    if not given and bearer.lower().startswith("bearer "):
        given = bearer[7:].strip()
    return given


def _key_matches(given: str, key: str) -> bool:
    """Constant-time comparison (no timing hint of how much of the key was right)."""
    return hmac.compare_digest(given.encode(), key.encode())


def create_app(run: LoadedRun, settings: ServeSettings | None = None) -> FastAPI:
    """The service of ``run`` (its task must have an entry in ``ENDPOINTS``)."""
    settings = settings or ServeSettings()
    settings.validate()
    spec = ENDPOINTS.get(run.cfg.task)
    model = run.model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    info = _run_info(run, spec, settings)

    def work(requests: Any) -> list[Any]:
        return spec.run(run, requests)

    batcher: MicroBatcher[Any, Any] = MicroBatcher(
        work, settings.max_batch, settings.batch_wait_ms / 1000
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title=f"seqlab: {run.cfg.task} ({run.cfg.model.name})",
        version=__version__,
        description=f"The best model of a seqlab run; POST {spec.path}. {spec.summary}",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.settings = settings

    @app.middleware("http")
    async def api_key(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if (
            settings.api_key
            and request.url.path not in OPEN_PATHS
            and not _key_matches(_key_of(request), settings.api_key)
        ):
            return JSONResponse(
                {"detail": "missing or wrong API key (send the header X-API-Key)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": Problem, "description": "A body that cannot be decoded (not UTF-8)"},
        401: {"model": Problem, "description": "Missing or wrong API key"},
        413: {"model": Problem, "description": "Request body too large"},
    }

    @app.get("/health", response_model=Health, summary="Liveness and batching counters.")
    async def health() -> Health:
        stats = batcher.stats
        return Health(
            status="ok",
            requests=stats.requests,
            batches=stats.batches,
            largest_batch=stats.largest,
        )

    # with a key, the schema declares it (the middleware above enforces it), so clients
    # and /docs know to send it
    keyed = [Depends(APIKeyHeader(name="X-API-Key", auto_error=False))] if settings.api_key else []

    @app.get(
        "/info",
        response_model=Info,
        responses=errors,
        summary="The served run.",
        dependencies=keyed,
    )
    async def run_info() -> Info:
        return info

    async def answer(body: Any) -> Any:
        try:
            spec.check(run, body, settings)
            return await batcher.submit(body)
        except InputError as err:
            raise _invalid(err.field, str(err), body) from None
        except SeqlabError as err:
            raise _invalid("body", str(err), body) from None

    request_model = spec.request(settings)
    answer.__annotations__ = {"body": request_model, "return": spec.response}
    app.post(
        spec.path,
        response_model=spec.response,
        responses=errors,
        summary=spec.summary,
        openapi_extra={"requestBody": {"content": {"application/json": {"example": spec.example}}}},
        dependencies=keyed,
    )(answer)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    @app.get("/playground.js", include_in_schema=False)
    async def script() -> FileResponse:
        return FileResponse(str(STATIC / "playground.js"), media_type="text/javascript")

    @app.get("/playground.css", include_in_schema=False)
    async def style() -> FileResponse:
        return FileResponse(str(STATIC / "playground.css"), media_type="text/css")

    return app


def _invalid(field: str, message: str, body: Any) -> RequestValidationError:
    """A 422 in FastAPI's own validation-error shape, naming the field."""
    location = ("body", *field.replace("]", "").replace("[", ".").split("."))
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])

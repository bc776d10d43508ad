"""schemathesis against the services' OpenAPI schemas, in process through ASGI: generated
requests that fit the schema and requests that do not, to every route, get a documented
status and a response that matches the schema, never a 500. A bounded run (fixed seed) of
what docs/results/serve.md records with the schemathesis CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from seqlab.evaluation import LoadedRun
from seqlab.serve.app import create_app
from seqlab.serve.settings import ServeSettings

LIMITS = ServeSettings(max_text_chars=300, max_generate_tokens=12, max_sentences=4, max_beam=3)


@pytest.mark.parametrize("name", ["translate", "lm_word", "cnn"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_route_answers_as_its_schema_says(
    name: str, mode: GenerationMode, request: pytest.FixtureRequest
) -> None:
    run_dir: Path = request.getfixturevalue(name)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(LoadedRun.load(run_dir), LIMITS)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/health", "/info"}
    assert len(operations) == 3  # and the task's route

    for operation in operations:
        if mode == GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # no parameters: nothing to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate()

        check()

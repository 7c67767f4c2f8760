"""schemathesis against the app's OpenAPI schema: no 5xx, no response outside the schema.

The app runs in-process without its lifespan (no supervisor: accepted jobs stay
queued), with an API key, a job and a deployment in the queue so the generated
requests reach real code paths, not just 404s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_helpers import API_KEY
from server_toy import TOY_SETTINGS

from forge_core.config import ForgeSettings
from forge_server.app import create_app
from forge_server.settings import ServerSettings

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def without_lifespan(app: Any) -> Any:
    """The ASGI app with a lifespan that starts nothing (no workers in this test)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def api_schema(tmp_path: Path) -> Any:
    root = tmp_path / "root"
    (root / "repo").mkdir(parents=True)
    (root / "repo" / "a.toy").write_text("def a\n")
    server = ServerSettings(
        runs_dir=tmp_path / "runs", allowed_roots=[root], api_keys=[API_KEY], max_body_bytes=65536
    )
    app = create_app(server, ForgeSettings.model_validate(TOY_SETTINGS))
    store = app.state.forge.store
    job, _ = store.submit(
        kind="fine-tune",
        repository=str(root / "repo"),
        config={},
        request={},
        runs_dir=server.runs_dir,
    )
    claimed = store.claim_next()
    assert claimed is not None
    store.finish(job.id, 1, "succeeded", model_name="m", endpoint="http://127.0.0.1:9/v1")
    store.submit(
        kind="fine-tune", repository=str(root / "repo"), config={}, request={}, runs_dir=tmp_path
    )
    return schemathesis.openapi.from_asgi("/openapi.json", without_lifespan(app), headers=AUTH)


def check(case: schemathesis.Case) -> None:
    """Call the app; validate. The deployment's endpoint is a closed port, so chat is a 502."""
    response = case.call(headers=AUTH)
    if case.operation.path == "/v1/chat/completions" and response.status_code == 502:
        assert response.json()["error"]["code"] == "upstream_unreachable"
        return
    case.validate_response(response, checks=CHECKS, headers=AUTH)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(api_schema: Any, mode: GenerationMode) -> None:
    tested, skipped = 0, []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=int(os.environ.get("SERVER_SCHEMA_EXAMPLES", "12")),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            check(case)

        try:
            run()
        except Unsatisfiable:  # an operation without inputs has no invalid ones
            skipped.append(operation.path)
            continue
        tested += 1
    assert tested + len(skipped) == 11
    assert set(skipped) <= ({"/healthz", "/metrics", "/v1/models"} if skipped else set())
    assert mode is GenerationMode.NEGATIVE or not skipped

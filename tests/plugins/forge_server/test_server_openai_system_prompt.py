"""The chat proxy puts the deployment's trained system prompt first when the request has none.

The app runs in-process without its lifespan; the requests of a test go through one
event loop (the proxy's pooled upstream client lives in it) to a fake upstream.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from fake_upstream import FakeUpstream
from fastapi.testclient import TestClient
from server_helpers import API_KEY

from forge_core.contracts import DeployResult
from forge_server.jobqueue import JobStore

SYSTEM = "You answer questions about the repository's code."
SYSTEM_ROLES = ("system", "developer")
QUESTION = {"role": "user", "content": "What does parse_config return?"}


def deploy(
    client: TestClient, upstream: FakeUpstream, name: str, details: dict[str, Any] | None
) -> str:
    """A succeeded job that deployed ``name`` to the fake upstream with ``details``
    (no deployment.json at all when None); its id."""
    store: JobStore = client.app.state.forge.store  # type: ignore[attr-defined]
    job, _ = store.submit(
        kind="fine-tune",
        repository="/repo",
        config={},
        request={},
        runs_dir=Path(client.app.state.forge.runs_dir),  # type: ignore[attr-defined]
    )
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == job.id
    if details is not None:
        deployment = DeployResult(
            target="llamacpp", model_name=name, endpoint=upstream.base_url, details=details
        )
        (Path(job.run_dir) / "deploy").mkdir(parents=True)
        (Path(job.run_dir) / "deploy" / "deployment.json").write_text(
            json.dumps(deployment.model_dump())
        )
    store.finish(job.id, 1, "succeeded", model_name=name, endpoint=upstream.base_url)
    return job.id


def chat(client: TestClient, *bodies: dict[str, Any]) -> list[httpx.Response]:
    """POST each body to /v1/chat/completions, in order, on one event loop."""

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://forge", headers=headers
        ) as http:
            return [await http.post("/v1/chat/completions", json=body) for body in bodies]

    return asyncio.run(post_all())


def test_the_deployed_system_prompt_goes_first(client: TestClient, upstream: FakeUpstream) -> None:
    deploy(client, upstream, "forge-a", {"system_prompt": SYSTEM, "n_ctx": 2048})
    answer, streamed = chat(
        client,
        {"model": "forge-a", "messages": [QUESTION]},
        {"messages": [QUESTION], "stream": True, "max_tokens": 2},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].startswith("echo: What does")
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    expected = [{"role": "system", "content": SYSTEM}, QUESTION]
    assert [request["messages"] for request in upstream.requests] == [expected, expected]
    assert [request["model"] for request in upstream.requests] == ["forge-a", "forge-a"]


def test_a_request_with_its_own_system_message_is_sent_as_is(
    client: TestClient, upstream: FakeUpstream
) -> None:
    deploy(client, upstream, "forge-a", {"system_prompt": SYSTEM})
    sent = [[{"role": role, "content": "Answer in French."}, QUESTION] for role in SYSTEM_ROLES]
    answers = chat(client, *({"messages": messages} for messages in sent))
    assert [answer.status_code for answer in answers] == [200, 200]
    assert [request["messages"] for request in upstream.requests] == sent


def test_each_deployment_gets_its_own_system_prompt_or_none(
    client: TestClient, upstream: FakeUpstream
) -> None:
    first = deploy(client, upstream, "forge-a", {"system_prompt": SYSTEM})
    deploy(client, upstream, "forge-ollama", {"modelfile": "/x/Modelfile"})  # none recorded
    deploy(client, upstream, "forge-old", None)  # no deployment.json to read
    models = ("forge-ollama", "forge-old", first, "default")
    answers = chat(client, *({"model": model, "messages": [QUESTION]} for model in models))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert [request["messages"] for request in upstream.requests] == [
        [QUESTION],
        [QUESTION],
        [{"role": "system", "content": SYSTEM}, QUESTION],  # by job id
        [QUESTION],  # default: the newest deployment, forge-old
    ]

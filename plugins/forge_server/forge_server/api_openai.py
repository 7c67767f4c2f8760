"""OpenAI-compatible endpoints: ``/v1/models`` and ``/v1/chat/completions``, proxied.

A chat request goes to the deployment named by ``model`` (a deployed model's name
or a job id), or to the newest succeeded job's deployment when ``model`` is empty
or ``default``. The request is forwarded as sent (fields this server does not
know included), with ``model`` set to the deployment's name, the system prompt
the model was trained with put first when the deployment records one and the
request has no system message, and without the caller's API key; streamed
answers are relayed chunk by chunk as they arrive.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from forge_core.chat import deployed_system_prompt, with_system_prompt
from forge_core.contracts import DeployResult
from forge_server.jobqueue import Job
from forge_server.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    OpenAIError,
)
from forge_server.security import error_body
from forge_server.state import ServerState, server_state

router = APIRouter(
    tags=["openai"],
    responses={
        400: {"model": OpenAIError, "description": "Malformed request (undecodable body)."},
        401: {"model": OpenAIError, "description": "Missing or invalid API key."},
        413: {"model": OpenAIError, "description": "Request body over max_body_bytes."},
    },
)
State = Annotated[ServerState, Depends(server_state)]
CHAT_PATH = "/v1/chat/completions"
DEFAULT_MODELS = frozenset({"", "default"})


class UpstreamError(Exception):
    """The model server failed; ``status`` and ``code`` say how to answer the client."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _deployments(state: ServerState) -> list[Job]:
    """Succeeded jobs with a deployment, newest first, one per model name."""
    seen: set[str] = set()
    unique = []
    for job in state.store.deployed():
        if job.model_name and job.model_name not in seen:
            seen.add(job.model_name)
            unique.append(job)
    return unique


def pick_deployment(state: ServerState, model: str | None) -> Job:
    """The deployment a chat request is for, or a 404 that lists what is deployed."""
    deployments = _deployments(state)
    if not deployments:
        raise HTTPException(
            404, "no model is deployed yet; a succeeded POST /v1/fine-tune job deploys one"
        )
    wanted = (model or "").strip()
    if wanted in DEFAULT_MODELS:
        return deployments[0]
    for job in state.store.deployed():
        if wanted in (job.model_name, job.id):
            return job
    names = ", ".join(job.model_name or job.id for job in deployments)
    raise HTTPException(404, f"model {wanted!r} is not deployed here; deployed: {names}")


def deployment_details(job: Job) -> dict[str, Any]:
    """The details of the job's deployment (its run's ``deploy/deployment.json``); {} if none."""
    path = Path(job.run_dir) / "deploy" / "deployment.json"
    try:
        return DeployResult.model_validate_json(path.read_bytes()).details
    except (OSError, ValueError):  # a job deployed before the file was kept, or a broken one
        return {}


@router.get(
    "/v1/models",
    response_model=ModelList,
    summary="Deployed models (OpenAI-compatible)",
)
def list_models(state: State) -> ModelList:
    """Every deployed model, newest first."""
    return ModelList(
        data=[
            ModelCard(
                id=job.model_name or job.id,
                created=int(job.finished_at or job.created_at),
                job_id=job.id,
                repository=job.repository,
            )
            for job in _deployments(state)
        ]
    )


def _upstream_failure(state: ServerState, exc: httpx.HTTPError, endpoint: str) -> UpstreamError:
    reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable"
    state.metrics.upstream_errors.labels(reason).inc()
    return UpstreamError(
        504 if reason == "timeout" else 502,
        f"the model server at {endpoint} is {reason}: {type(exc).__name__}",
        f"upstream_{reason}",
    )


def _relay_error(state: ServerState, response: httpx.Response, body: bytes) -> UpstreamError:
    """Turn a model server's error answer into ours (its 4xx stay 4xx)."""
    state.metrics.upstream_errors.labels(f"status_{response.status_code}").inc()
    try:
        detail: Any = json.loads(body)
        message = detail.get("error", {}).get("message") or str(detail)
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace")[:500]
    status = response.status_code if 400 <= response.status_code < 500 else 502
    message = f"the model server answered {response.status_code}: {message}"
    return UpstreamError(status, message, "upstream_error")


def _count_usage(state: ServerState, data: Any) -> None:
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict):
        for kind in ("prompt_tokens", "completion_tokens"):
            if isinstance(usage.get(kind), int):
                state.metrics.chat_tokens.labels(kind.removesuffix("_tokens")).inc(usage[kind])


@router.post(
    CHAT_PATH,
    response_model=ChatCompletion,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "A completion, or with `stream: true` server-sent chunks.",
        },
        404: {"model": OpenAIError, "description": "No such deployed model."},
        422: {"model": OpenAIError, "description": "Invalid request."},
        502: {"model": OpenAIError, "description": "The model server failed or is down."},
        504: {"model": OpenAIError, "description": "The model server timed out."},
    },
    summary="Chat with a deployed model (OpenAI-compatible)",
)
async def chat_completions(request: ChatCompletionRequest, state: State) -> Any:
    """Forward the chat to the deployed model's OpenAI-compatible server.

    When the deployment records the system prompt its model was trained with
    (llama.cpp deployments do; Ollama's Modelfile applies it itself) and the
    request has no `system` or `developer` message, that prompt is sent first.
    """
    job = pick_deployment(state, request.model)  # one indexed SQLite read: no thread hop
    assert job.endpoint is not None
    body = request.model_dump(mode="json", exclude_unset=True)
    body["model"] = job.model_name
    system_prompt = deployed_system_prompt(deployment_details(job))  # one small file read
    body["messages"] = with_system_prompt(body["messages"], system_prompt)
    url = job.endpoint.rstrip("/") + "/chat/completions"
    try:
        if request.stream:
            return await _stream(state, url, body, job.endpoint)
        response = await state.http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise _upstream_failure(state, exc, job.endpoint) from None
    if response.status_code >= 400:
        raise _relay_error(state, response, response.content)
    try:
        data = response.json()
    except ValueError:
        state.metrics.upstream_errors.labels("invalid_json").inc()
        raise UpstreamError(502, "the model server sent invalid JSON", "upstream_error") from None
    _count_usage(state, data)
    return Response(response.content, media_type="application/json")  # relayed as sent


async def _stream(
    state: ServerState, url: str, body: dict[str, Any], endpoint: str
) -> StreamingResponse:
    """Open the upstream stream; relay its bytes, closing it when the client is done."""
    upstream = await state.http.send(state.http.build_request("POST", url, json=body), stream=True)
    if upstream.status_code >= 400:
        content = await upstream.aread()
        await upstream.aclose()
        raise _relay_error(state, upstream, content)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for events in whole_events(upstream.aiter_bytes()):
                yield events
        except httpx.HTTPError as exc:
            # Only whole events went out: the error event starts on a fresh line.
            failure = _upstream_failure(state, exc, endpoint)
            error = error_body(CHAT_PATH, failure.status, str(failure), failure.code)
            yield f"data: {json.dumps(error)}\n\ndata: [DONE]\n\n".encode()

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(upstream.aclose),
    )


#: What ends a server-sent event: a blank line, whichever line ending the server uses.
EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")


async def whole_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The bytes of an event stream, passed on as soon as they complete an event.

    A stream cut inside an event would otherwise leave the client half an event with
    the next thing sent glued to it; the bytes of an unfinished event are held back
    until it ends (an error from ``chunks`` is raised with them dropped). What
    follows the last blank line when the stream ends normally is passed on as sent.
    """
    pending = b""
    async for chunk in chunks:
        pending += chunk
        cut = max(
            (at + len(end) for end in EVENT_ENDS if (at := pending.rfind(end)) >= 0), default=0
        )
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending

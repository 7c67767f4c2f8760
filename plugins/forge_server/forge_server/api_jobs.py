"""The job endpoints: fine-tune, retrain, status, list, cancel, and logs as server-sent events."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from forge_server.jobqueue import STATES, TERMINAL, Job, JobState
from forge_server.jobspec import JobSpecError, resolve_settings, retrain_settings
from forge_server.schemas import (
    ErrorResponse,
    FineTuneRequest,
    JobAccepted,
    JobList,
    JobStatus,
    RetrainRequest,
)
from forge_server.security import PathRefused, check_base_model, resolve_repository
from forge_server.state import ServerState, job_status, server_state

router = APIRouter(tags=["jobs"])
State = Annotated[ServerState, Depends(server_state)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        description="Submitting twice with the same key returns the first job instead of "
        "queueing a second one (safe retries after a dropped connection).",
    ),
]
#: Seconds between polls of a followed log, and between keep-alive comments.
LOG_POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
LINE_END = re.compile(rb"\r\n|\r|\n")

ACCEPTED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "Path outside the allowed roots."},
    422: {"model": ErrorResponse, "description": "Invalid request or settings."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such job."}
}


def _accepted(job: Job, created: bool) -> JSONResponse:
    body = JobAccepted(
        job_id=job.id,
        state=job.state,
        status_url=f"/status/{job.id}",
        logs_url=f"/v1/jobs/{job.id}/logs",
        created=created,
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": f"/status/{job.id}"},
    )


def _refused(exc: PathRefused | JobSpecError) -> HTTPException:
    if isinstance(exc, PathRefused):
        return HTTPException(exc.status, str(exc))
    return HTTPException(422, exc.details)


@router.post(
    "/v1/fine-tune",
    status_code=202,
    response_model=JobAccepted,
    responses={200: {"model": JobAccepted, "description": "Known Idempotency-Key."}, **ACCEPTED},
    summary="Queue a fine-tune job",
)
def fine_tune(
    request: FineTuneRequest, state: State, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Queue mine → synth → validate → train → eval → export → deploy on a repository."""
    try:
        repository = resolve_repository(request.repository, state.roots)
        if request.base_model is not None:
            check_base_model(request.base_model, state.roots)
        settings = resolve_settings(state.forge_settings, request, state.runs_dir)
    except (PathRefused, JobSpecError) as exc:
        raise _refused(exc) from None
    job, created = state.store.submit(
        kind="fine-tune",
        repository=str(repository),
        config=settings.model_dump(mode="json"),
        request=request.model_dump(mode="json"),
        runs_dir=state.runs_dir,
        idempotency_key=idempotency_key,
    )
    if created:
        state.metrics.submitted.labels("fine-tune").inc()
        state.supervisor.wake()
    return _accepted(job, created)


@router.post(
    "/v1/retrain",
    status_code=202,
    response_model=JobAccepted,
    responses={
        200: {"model": JobAccepted, "description": "Known Idempotency-Key."},
        404: {"model": ErrorResponse, "description": "No earlier successful fine-tune."},
        **ACCEPTED,
    },
    summary="Retrain a repository with its last successful settings",
)
def retrain(
    request: RetrainRequest, state: State, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Re-run the last successful configuration on the repository's current state.

    A new run directory with the same settings; unchanged files come from the parse
    cache; the quality gate is enforced, so a worse model is not deployed and the
    previous one keeps serving.
    """
    try:
        repository = resolve_repository(request.repository, state.roots)
    except PathRefused as exc:
        raise _refused(exc) from None
    previous = state.store.last_succeeded(str(repository))
    if previous is None:
        raise HTTPException(
            404,
            f"no successful fine-tune of {repository} yet; POST /v1/fine-tune first",
        )
    try:
        settings = retrain_settings(previous.config, state.forge_settings, state.runs_dir)
    except JobSpecError as exc:
        raise _refused(exc) from None
    job, created = state.store.submit(
        kind="retrain",
        repository=str(repository),
        config=settings.model_dump(mode="json"),
        request=request.model_dump(mode="json"),
        runs_dir=state.runs_dir,
        idempotency_key=idempotency_key,
        parent_job=previous.id,
    )
    if created:
        state.metrics.submitted.labels("retrain").inc()
        state.supervisor.wake()
    return _accepted(job, created)


def _find(state: ServerState, job_id: str) -> Job:
    job = state.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


def _json(model: BaseModel) -> Response:
    """A model as a JSON response, serialised once (no second validation by FastAPI)."""
    return Response(model.model_dump_json(), media_type="application/json")


# One job's status is a sub-millisecond read (SQLite in WAL mode never waits for a
# writer, manifests are small files): cheaper in the event loop than a thread-pool hop.
# A page of jobs may read hundreds of manifests, so it runs in the thread pool.


@router.get(
    "/status/{job_id}", response_model=JobStatus, responses=NOT_FOUND, summary="A job's status"
)
async def status(job_id: str, state: State) -> Response:
    """State, current stage, progress, metrics so far, and the error if it failed."""
    return _json(state.status_of(_find(state, job_id)))


router.add_api_route(
    "/v1/jobs/{job_id}",
    status,
    methods=["GET"],
    response_model=JobStatus,
    responses=NOT_FOUND,
    summary="A job's status (same as /status/{job_id})",
    operation_id="job_status_v1",
)


@router.get("/v1/jobs", response_model=JobList, summary="List jobs")
def list_jobs(
    state: State,
    job_state: Annotated[
        JobState | None, Query(alias="state", description="Only jobs in this state.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> Response:
    """Jobs, newest first, a page at a time."""
    assert job_state is None or job_state in STATES
    jobs, total = state.store.page(state=job_state, limit=limit, offset=offset)
    page = JobList(jobs=[state.status_of(j) for j in jobs], total=total, limit=limit, offset=offset)
    return _json(page)


@router.post(
    "/v1/jobs/{job_id}/cancel",
    response_model=JobStatus,
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "Already finished."}},
    summary="Cancel a job",
)
def cancel(job_id: str, state: State) -> JobStatus:
    """Cancel a queued job, or kill a running job's whole process group."""
    job, previous = state.store.cancel(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    if previous in TERMINAL:
        raise HTTPException(409, f"job {job_id} already {previous}; nothing to cancel")
    if previous == "running":
        state.supervisor.kill(job)
    return job_status(job)


# --------------------------------------------------------------------------- logs


def _event(name: str, data: str, event_id: int | None = None) -> bytes:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


async def follow_log(
    state: ServerState, job_id: str, path: Path, offset: int, follow: bool
) -> AsyncIterator[bytes]:
    """Yield the log's lines as SSE events; at the end (job finished), an ``end`` event.

    Carriage returns end lines too, so progress bars stream; each event's id is the
    byte offset just after its line, for ``Last-Event-ID`` resumption. When the
    server is stopping the stream ends without an ``end`` event (the job goes on),
    so the client reconnects with ``Last-Event-ID`` once a server is back.
    """
    pending = b""
    idle = 0.0
    while True:
        if state.stopping.is_set():
            yield b": the server is shutting down; reconnect with Last-Event-ID\n\n"
            return
        job = await run_in_threadpool(state.store.get, job_id)
        finished = job is None or job.terminal or not follow
        chunk = await run_in_threadpool(_read_from, path, offset)
        if chunk:
            idle = 0.0
            start = offset - len(pending)
            pending += chunk
            offset += len(chunk)
            last = 0
            for match in LINE_END.finditer(pending):
                line = pending[last : match.start()]
                last = match.end()
                if line.strip():
                    yield _event("log", line.decode("utf-8", "replace"), start + last)
            pending = pending[last:]
            continue
        if finished:
            if pending.strip():
                yield _event("log", pending.decode("utf-8", "replace"), offset)
            final = {"state": job.state if job else "unknown", "error": job.error if job else None}
            yield _event("end", json.dumps(final), offset)
            return
        await asyncio.sleep(LOG_POLL_SECONDS)
        idle += LOG_POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield b": keep-alive\n\n"


def _read_from(path: Path, offset: int, size: int = 65536) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(size)
    except OSError:
        return b""


def _event_offset(last_event_id: str | None) -> int:
    """The byte offset to resume at: a plain ASCII decimal ``Last-Event-ID``, else 0.

    (``str.isdigit`` alone accepts '²' or '٣', which ``int`` then refuses.)
    """
    if last_event_id and last_event_id.isascii() and last_event_id.isdigit():
        return int(last_event_id)
    return 0


@router.get(
    "/v1/jobs/{job_id}/logs",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`log` events (one line each; `id` is the byte offset), then an "
            "`end` event with the final state.",
        },
        **NOT_FOUND,
    },
    summary="Follow a job's log (server-sent events)",
)
def logs(
    job_id: str,
    state: State,
    follow: Annotated[bool, Query(description="Keep streaming until the job ends.")] = True,
    last_event_id: Annotated[
        str | None, Header(max_length=20, description="Resume after this byte offset.")
    ] = None,
) -> Response:
    """Tail the job's ``job.log``: what the worker prints, stage events, training progress."""
    job = _find(state, job_id)
    offset = _event_offset(last_event_id)
    return StreamingResponse(
        follow_log(state, job.id, Path(job.run_dir) / "job.log", offset, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

"""What every route needs: the settings, the queue, the supervisor, the metrics."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import Request

from forge_core.config import ForgeSettings
from forge_server.jobqueue import Job, JobStore
from forge_server.metrics import ServerMetrics
from forge_server.progress import read_progress
from forge_server.schemas import JobStatus, ProgressView, WorkerView
from forge_server.settings import ServerSettings
from forge_server.supervisor import Supervisor

#: How many finished jobs' statuses are kept in memory.
FINISHED_CACHE = 2048


@dataclass
class ServerState:
    """One server's shared objects (``app.state.forge``)."""

    settings: ServerSettings
    forge_settings: ForgeSettings
    store: JobStore
    supervisor: Supervisor
    metrics: ServerMetrics
    http: httpx.AsyncClient
    roots: list[Path] = field(default_factory=list)
    #: Set when the server is asked to stop: endless responses (followed logs) end.
    stopping: threading.Event = field(default_factory=threading.Event)
    finished: OrderedDict[str, tuple[float, JobStatus]] = field(default_factory=OrderedDict)

    @property
    def runs_dir(self) -> Path:
        """Where job run directories go."""
        return self.settings.runs_dir.resolve()

    def status_of(self, job: Job) -> JobStatus:
        """The job's status; a finished job's is computed once and kept (it cannot change)."""
        cached = self.finished.get(job.id)
        if cached is not None and cached[0] == job.updated_at:
            return cached[1]
        status = job_status(job)
        if job.terminal:
            self.finished[job.id] = (job.updated_at, status)
            if len(self.finished) > FINISHED_CACHE:
                self.finished.popitem(last=False)
        return status


async def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the server's state (async: no thread-pool hop)."""
    state: ServerState = request.app.state.forge
    return state


def _time(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, UTC) if stamp is not None else None


def job_status(job: Job) -> JobStatus:
    """The API view of a job, progress and metrics read from its run directory."""
    progress, metrics = read_progress(job)
    created = _time(job.created_at)
    updated = _time(job.updated_at)
    assert created is not None and updated is not None
    worker = (
        WorkerView(pid=job.worker_pid, heartbeat_at=_time(job.heartbeat_at))
        if job.state == "running"
        else None
    )
    return JobStatus(
        id=job.id,
        kind="retrain" if job.kind == "retrain" else "fine-tune",
        state=job.state,
        repository=job.repository,
        created_at=created,
        started_at=_time(job.started_at),
        finished_at=_time(job.finished_at),
        updated_at=updated,
        stage=progress["stage"] or job.stage,
        progress=ProgressView.model_validate(progress),
        metrics=metrics,
        error=job.error,
        attempts=job.attempts,
        retry_reasons=job.retry_reasons,
        worker=worker,
        model=job.model_name if job.state == "succeeded" else None,
        parent_job=job.parent_job,
        run_dir=job.run_dir,
    )

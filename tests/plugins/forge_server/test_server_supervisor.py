"""The supervisor: a worker that cannot be started is no worker death."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forge_server.app import create_app
from forge_server.jobqueue import JobStore
from forge_server.settings import ServerSettings
from forge_server.supervisor import LAUNCH_BACKOFF_MAX_SECONDS


def queue_jobs(store: JobStore, runs: Path, count: int) -> list[str]:
    return [
        store.submit(kind="fine-tune", repository="/r", config={}, request={}, runs_dir=runs)[0].id
        for _ in range(count)
    ]


def test_a_worker_that_cannot_start_leaves_the_jobs_queued_without_using_an_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ServerSettings(runs_dir=tmp_path / "runs", max_retries=2, poll_seconds=1.0)
    app = create_app(settings)  # no lifespan: the test ticks the supervisor itself
    state = app.state.forge
    ids = queue_jobs(state.store, settings.runs_dir, 3)
    real_popen = subprocess.Popen
    children: list[subprocess.Popen[bytes]] = []

    def out_of_processes(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", out_of_processes)
    with caplog.at_level(logging.ERROR, logger="forge_server"):
        state.supervisor.tick()
    for job_id in ids:
        job = state.store.get(job_id)
        assert job.state == "queued" and job.attempts == 0, job
        assert job.retry_reasons == [] and job.error is None and job.started_at is None
    # one failed start, then the tick stopped: not one per queued job, not max_retries each
    assert caplog.text.count("could not start") == 1
    assert "Resource temporarily unavailable" in caplog.text and "stays queued" in caplog.text
    metrics = TestClient(app).get("/metrics").text
    assert 'forge_server_worker_launch_failures_total{reason="EAGAIN"} 1.0' in metrics
    assert 'forge_server_job_worker_deaths_total{outcome="failed"}' not in metrics

    state.supervisor.tick()  # paused: no second try at once
    assert caplog.text.count("could not start") == 1
    state.supervisor.launch_paused_until = 0.0  # as if the pause were over
    with caplog.at_level(logging.ERROR, logger="forge_server"):
        state.supervisor.tick()
    assert caplog.text.count("could not start") == 2
    pause = state.supervisor.launch_paused_until - time.monotonic()
    assert 1.5 < pause <= 2.0 <= LAUNCH_BACKOFF_MAX_SECONDS  # longer after each failure

    def idle_worker(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)
        children.append(child)
        return child

    monkeypatch.setattr(subprocess, "Popen", idle_worker)  # the shortage has passed
    state.supervisor.launch_paused_until = 0.0
    try:
        state.supervisor.tick()
        first = state.store.get(ids[0])
        assert first.state == "running" and first.attempts == 1
        assert first.worker_pid == children[0].pid
        assert state.supervisor.launch_failures == 0
        assert [state.store.get(i).state for i in ids[1:]] == ["queued", "queued"]
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=10)

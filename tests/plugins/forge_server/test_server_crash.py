"""Crashes: SIGKILL the server (and its workers) mid-job, restart, and every job still ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from server_helpers import ServerProcess, crash_soak, kill_workers, wait_for

from forge_server.supervisor import worker_alive

pytestmark = pytest.mark.slow


def wait_for_step(server: ServerProcess, job_id: str, step: int) -> dict[str, object]:
    """Poll until the job's training reached ``step``."""
    deadline = time.monotonic() + 60
    with server.client() as http:
        while time.monotonic() < deadline:
            status = http.get(f"/status/{job_id}").json()
            train = status["progress"]["train"]
            if train and train["step"] >= step:
                return dict(status)
            assert status["state"] in ("queued", "running"), status
            time.sleep(0.05)
    raise AssertionError(f"{job_id} never reached step {step}")


def test_killed_server_and_worker_the_job_resumes_and_finishes(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(SERVER_TOY_STEP_SECONDS="0.15")
    body = {"repository": "repo", "hyperparameters": {"max_steps": 12}}
    job_id = server.client().post("/v1/fine-tune", json=body).json()["job_id"]
    status = wait_for_step(server, job_id, 3)
    worker = status["worker"]["pid"]  # type: ignore[index]
    server.crash()
    assert kill_workers(tmp_path / "runs" / "jobs.sqlite3") == [worker]

    restarted = start_server(SERVER_TOY_STEP_SECONDS="0.15")
    final = wait_for(restarted.client(), job_id)
    assert final["state"] == "succeeded", final
    assert final["attempts"] == 2
    assert "is gone" in final["retry_reasons"][0]
    assert final["metrics"]["train"]["resumed_from_step"] >= 3  # from its last checkpoint
    log = (Path(final["run_dir"]) / "job.log").read_text()
    second = log.split("attempt 2: forge run")[1]
    assert "[mine] up to date, skipped" in second and "[validate] up to date" in second


def test_a_worker_outlives_a_server_crash_and_is_adopted(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(SERVER_TOY_STEP_SECONDS="0.15")
    body = {"repository": "repo", "hyperparameters": {"max_steps": 12}}
    job_id = server.client().post("/v1/fine-tune", json=body).json()["job_id"]
    worker = wait_for_step(server, job_id, 2)["worker"]["pid"]  # type: ignore[index]
    server.crash()
    assert worker_alive(worker)
    restarted = start_server(SERVER_TOY_STEP_SECONDS="0.15")
    final = wait_for(restarted.client(), job_id)
    assert final["state"] == "succeeded" and final["attempts"] == 1
    assert "resumed_from_step" not in final["metrics"]["train"]


def test_a_worker_that_keeps_dying_is_retried_then_failed_with_the_reason(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(FORGE_SERVER_MAX_RETRIES="1")
    http = server.client()
    job_id = http.post("/v1/fine-tune", json={"repository": "repo", "base_model": "toycrash"})
    final = wait_for(http, job_id.json()["job_id"])
    assert final["state"] == "failed" and final["attempts"] == 2
    assert "died 2 times" in final["error"] and "SIGKILL" in final["error"]
    assert len(final["retry_reasons"]) == 2
    metrics = http.get("/metrics").text
    assert 'forge_server_job_worker_deaths_total{outcome="failed"} 1.0' in metrics


def test_jobs_across_crashes_are_never_lost_or_duplicated(tmp_path: Path) -> None:
    summary = crash_soak(tmp_path, jobs=20, crashes=2, timeout=300)
    assert summary["states"] == {"succeeded": 20}, summary

"""A real ``forge serve``: fine-tune to ``succeeded``, chat through the official openai client,
logs as server-sent events, retrain behind the quality gate, cancellation, metrics."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from fake_upstream import FakeUpstream
from server_helpers import API_KEY, ServerProcess, wait_for

from forge_server.jobqueue import JobStore
from forge_server.supervisor import worker_alive

pytestmark = pytest.mark.slow


def read_events(
    http: httpx.Client, path: str, headers: dict[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """Every (event, data, id) of a server-sent event stream, until the server ends it."""
    events: list[tuple[str, str, str]] = []
    name, data, event_id = "message", [], ""
    with http.stream("GET", path, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line and data:
                events.append((name, "\n".join(data), event_id))
                name, data = "message", []
    return events


def test_fine_tune_the_sample_repo_then_chat_with_it(
    start_server: Callable[..., ServerProcess], upstream: FakeUpstream
) -> None:
    server = start_server()
    http = server.client()
    accepted = http.post(
        "/v1/fine-tune",
        json={"repository": "sample_repo", "method": "lora", "hyperparameters": {"max_steps": 4}},
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    assert accepted.headers["location"] == f"/status/{job_id}"
    status = wait_for(http, job_id)
    assert status["state"] == "succeeded", status
    assert status["progress"]["percent"] == 100.0
    assert status["progress"]["stages_done"][-1] == "deploy"
    assert status["metrics"]["mine"]["files"] >= 8  # the .py, .go and .js files of the sample
    assert status["metrics"]["train"]["steps"] == 4.0
    assert status["metrics"]["eval"]["gate"]["passed"] is True
    assert Path(status["run_dir"]).parent == server.runs_dir.resolve()
    assert http.get("/v1/jobs", params={"state": "succeeded"}).json()["total"] == 1
    assert http.get("/v1/jobs", params={"state": "failed"}).json()["jobs"] == []

    events = read_events(http, f"/v1/jobs/{job_id}/logs")
    lines = [data for name, data, _ in events if name == "log"]
    assert any("[train] running" in line for line in lines)
    assert events[-1][0] == "end" and json.loads(events[-1][1])["state"] == "succeeded"
    resumed = read_events(
        http, f"/v1/jobs/{job_id}/logs?follow=false", {"Last-Event-ID": events[2][2]}
    )
    assert [data for _, data, _ in resumed] == [data for _, data, _ in events[3:]]

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    models = client.models.list().data
    assert [m.id for m in models] == [status["model"]]
    answer = client.chat.completions.create(
        model=status["model"],
        messages=[{"role": "user", "content": "what does stock.go do"}],
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=["\n\n"],
    )
    assert answer.choices[0].message.content == "echo: what does stock.go do"
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    forwarded = upstream.requests[-1]
    assert forwarded["model"] == status["model"] and forwarded["stop"] == ["\n\n"]
    assert forwarded["temperature"] == 0.2 and forwarded["top_p"] == 0.9
    assert "authorization" not in upstream.headers[-1]  # our key never reaches the model server

    stream = client.chat.completions.create(
        model=job_id,  # a job id names its deployment too
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream this please"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4

    default = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "newest"}]
    )
    assert default.choices[0].message.content == "echo: newest"
    with pytest.raises(openai.NotFoundError, match="not deployed here"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong-key-42").models.list()

    metrics = http.get("/metrics").text
    assert 'forge_server_jobs{state="succeeded"} 1.0' in metrics
    assert 'forge_server_http_request_duration_seconds_count{method="GET",route="/status/{job_id}"}'
    assert 'forge_server_chat_tokens_total{kind="completion"}' in metrics
    # the API process never loads torch (its workers may)
    assert server.process is not None
    maps = Path(f"/proc/{server.process.pid}/maps")
    if maps.exists():
        assert "libtorch" not in maps.read_text()


def test_retrain_reuses_the_parse_cache_and_the_gate_keeps_a_worse_model_out(
    start_server: Callable[..., ServerProcess], root: Path
) -> None:
    server = start_server()
    http = server.client()
    assert http.post("/v1/retrain", json={"repository": "repo"}).status_code == 404
    first = http.post("/v1/fine-tune", json={"repository": "repo", "model_name": "team"})
    first_status = wait_for(http, first.json()["job_id"])
    assert first_status["state"] == "succeeded"

    (root / "repo" / "new.toy").write_text("def added_later\nbody\n")
    again = http.post("/v1/retrain", json={"repository": str(root / "repo")})
    assert again.status_code == 202
    second = wait_for(http, again.json()["job_id"])
    assert second["state"] == "succeeded" and second["kind"] == "retrain"
    assert second["parent_job"] == first_status["id"]
    assert second["run_dir"] != first_status["run_dir"]
    mined = second["metrics"]["mine"]
    assert mined["files"] == 7 and mined["cached_files"] == 6  # only the new file was parsed

    worse_units = "".join(f"def regress_marker_{n}\n" for n in range(12))
    (root / "repo" / "worse.toy").write_text(worse_units)
    worse = wait_for(http, http.post("/v1/retrain", json={"repository": "repo"}).json()["job_id"])
    assert worse["state"] == "failed"
    assert "quality gate failed" in worse["error"] and worse["error"].startswith("stage deploy")
    models = http.get("/v1/models").json()["data"]
    assert [(m["id"], m["job_id"]) for m in models] == [("team", second["id"])]


def test_cancel_kills_the_worker_group_and_the_queue_moves_on(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(SERVER_TOY_STEP_SECONDS="0.2")
    http = server.client()
    slow = {"repository": "repo", "hyperparameters": {"max_steps": 200}}
    running = http.post("/v1/fine-tune", json=slow).json()["job_id"]
    queued = http.post("/v1/fine-tune", json=slow).json()["job_id"]
    status = wait_for(http, running, frozenset({"running"}))
    deadline = time.monotonic() + 30
    while status["progress"]["train"] is None and time.monotonic() < deadline:
        time.sleep(0.1)
        status = http.get(f"/status/{running}").json()
    train = status["progress"]["train"]
    assert train["total_steps"] == 200 and train["step"] >= 1
    assert status["progress"]["stage"] == "train" and status["progress"]["percent"] >= 3 * 100 / 7
    pid = status["worker"]["pid"]
    assert worker_alive(pid) and os.getpgid(pid) == pid  # its own process group

    assert http.post(f"/v1/jobs/{queued}/cancel").json()["state"] == "cancelled"
    cancelled = http.post(f"/v1/jobs/{running}/cancel").json()
    assert cancelled["state"] == "cancelled" and cancelled["error"] == "cancelled by request"
    deadline = time.monotonic() + 10
    while worker_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not worker_alive(pid)
    assert http.post(f"/v1/jobs/{running}/cancel").status_code == 409

    quick = http.post("/v1/fine-tune", json={"repository": "repo"}).json()["job_id"]
    assert wait_for(http, quick)["state"] == "succeeded"
    assert http.get(f"/status/{running}").json()["state"] == "cancelled"


def test_stopping_the_server_ends_followed_log_streams(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    # a running job whose lease outlasts the test: its log stream would never end by itself
    store = JobStore(tmp_path / "runs" / "jobs.sqlite3")
    job, _ = store.submit(
        kind="fine-tune", repository="/r", config={}, request={}, runs_dir=tmp_path / "runs"
    )
    assert store.claim_next() is not None
    Path(job.run_dir).mkdir(parents=True)
    (Path(job.run_dir) / "job.log").write_text("attempt 1: forge run /r\n")
    server = start_server(FORGE_SERVER_HEARTBEAT_SECONDS="1000")
    assert server.process is not None
    lines: list[str] = []
    signalled = float("inf")
    with server.client().stream("GET", f"/v1/jobs/{job.id}/logs", timeout=30) as response:
        for line in response.iter_lines():  # a keep-alive comes every 15 s at least
            lines.append(line)
            if line.startswith("data: attempt 1"):
                server.process.send_signal(signal.SIGINT)  # Ctrl+C while a client follows
                signalled = time.monotonic()
            if time.monotonic() - signalled > 10:
                break  # still streaming long after the signal
    assert server.process.wait(timeout=15) == 0
    assert any("the server is shutting down" in line for line in lines), lines
    assert not any(line.startswith("event: end") for line in lines)  # the job did not end
    assert "timeout graceful shutdown exceeded" not in server.log()
    assert store.get(job.id).state == "running"

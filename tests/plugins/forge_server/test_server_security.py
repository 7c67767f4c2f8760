"""Bad input gets a 4xx with a clear message, never a 5xx; keys and roots are enforced."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from server_helpers import API_KEY, ServerProcess, kill_workers, make_repo
from server_toy import TOY_SETTINGS

from forge_core.config import ForgeSettings
from forge_server.app import create_app
from forge_server.security import APIKeyMiddleware
from forge_server.settings import ServerSettings


def test_healthz_needs_no_key_everything_else_does(client: TestClient) -> None:
    bare = TestClient(client.app)
    assert bare.get("/healthz").json() == {"status": "ok"}
    for method, path in [
        ("GET", "/v1/jobs"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("POST", "/v1/fine-tune"),
    ]:
        response = bare.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in response.json()["detail"]
    wrong = bare.get("/v1/jobs", headers={"Authorization": "Bearer wrong-key-123"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "invalid API key"}
    assert bare.get("/v1/jobs", headers={"Authorization": API_KEY}).status_code == 401
    assert client.get("/v1/jobs").status_code == 200


def test_openai_endpoints_answer_errors_in_openai_shape(client: TestClient) -> None:
    bare = TestClient(client.app)
    error = bare.get("/v1/models").json()["error"]
    assert error["code"] == "invalid_api_key" and "Bearer" in error["message"]
    body = {"messages": [{"role": "user", "content": "hi"}]}
    missing = client.post("/v1/chat/completions", json=body)
    assert missing.status_code == 404
    assert "no model is deployed yet" in missing.json()["error"]["message"]
    invalid = client.post("/v1/chat/completions", json={"messages": []})
    assert invalid.status_code == 422 and "messages" in invalid.json()["error"]["message"]


def test_key_check_is_constant_time_over_every_key() -> None:
    middleware = APIKeyMiddleware(app=None, keys=[b"first-key-1234", b"second-key-1234"])  # type: ignore[arg-type]
    assert middleware.authorized(b"Bearer second-key-1234")
    assert middleware.authorized(b"bearer first-key-1234")
    assert not middleware.authorized(b"Bearer first-key-123")
    assert not middleware.authorized(b"Basic first-key-1234")
    assert not middleware.authorized(None)


@pytest.mark.parametrize(
    ("repository", "status", "words"),
    [
        ("../../../../etc", 403, "outside the allowed roots"),
        ("repo/../../../etc", 403, "outside the allowed roots"),
        ("/etc", 403, "outside the allowed roots"),
        ("/no/such/place/../x", 403, "outside the allowed roots"),
        ("does-not-exist", 422, "does not exist"),
        ("repo/mod0.toy", 422, "not a directory"),
        ("repo\x00x", 422, "NUL"),
    ],
)
def test_repository_paths_are_confined_to_the_roots(
    client: TestClient, repository: str, status: int, words: str
) -> None:
    response = client.post("/v1/fine-tune", json={"repository": repository})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_a_symlink_inside_a_root_pointing_outside_is_refused(
    client: TestClient, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "sneaky")
    response = client.post("/v1/fine-tune", json={"repository": "sneaky"})
    assert response.status_code == 403
    assert str(outside) in response.json()["detail"]
    accepted = client.post("/v1/fine-tune", json={"repository": str(root / "repo")})
    assert accepted.status_code == 202


def test_base_model_paths_are_confined_too(client: TestClient) -> None:
    response = client.post(
        "/v1/fine-tune", json={"repository": "repo", "base_model": "/etc/models/x"}
    )
    assert response.status_code == 403 and "base_model" in response.json()["detail"]
    response = client.post("/v1/fine-tune", json={"repository": "repo", "base_model": "a/../b"})
    assert response.status_code == 422
    response = client.post("/v1/fine-tune", json={"repository": "repo", "base_model": "~/m"})
    assert response.status_code == 422 and "absolute path" in response.json()["detail"]
    hub = client.post("/v1/fine-tune", json={"repository": "repo", "base_model": "Qwen/Coder"})
    assert hub.status_code == 202


def test_unknown_fields_and_bad_values_are_422_with_the_field(client: TestClient) -> None:
    top = client.post("/v1/fine-tune", json={"repository": "repo", "epochz": 3})
    assert top.status_code == 422 and top.json()["detail"][0]["loc"] == ["body", "epochz"]
    typo = client.post("/v1/fine-tune", json={"repository": "repo", "hyperparameters": {"rnak": 8}})
    assert typo.status_code == 422
    detail = typo.json()["detail"][0]
    assert detail["loc"] == ["body", "hyperparameters", "rnak"]
    assert "did you mean 'rank'" in detail["msg"]
    bad = client.post("/v1/fine-tune", json={"repository": "repo", "hyperparameters": {"rank": 0}})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "hyperparameters", "rank"]
    nested = client.post(
        "/v1/fine-tune", json={"repository": "repo", "settings": {"eval": {"gate": {"x": 1}}}}
    )
    assert nested.status_code == 422
    assert nested.json()["detail"][0]["loc"][:4] == ["body", "settings", "eval", "gate"]
    method = client.post("/v1/fine-tune", json={"repository": "repo", "method": "dora"})
    assert method.status_code == 422


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"runs_dir": {"x": 1}}, "cannot be set by a request"),
        ({"plugins": {"disabled": []}}, "cannot be set by a request"),
        ({"train": {"rank": 4}}, "`hyperparameters`"),
        ({"mine": {"cache_dir": "/tmp/elsewhere"}}, "server operator"),
        ({"synth": {"teacher": {"enabled": True}}}, "server operator"),
        ({"deploy": {"host": "0.0.0.0"}}, "server operator"),
        ({"deploy": {"ollama_host": "http://attacker:11434"}}, "server operator"),
        ({"deploy": {"target": "ollama"}}, "server operator"),
        ({"export": {"fidelity_file": "/etc/passwd"}}, "server operator"),
    ],
)
def test_operator_settings_cannot_be_overridden(
    client: TestClient, settings: dict[str, object], words: str
) -> None:
    response = client.post("/v1/fine-tune", json={"repository": "repo", "settings": settings})
    assert response.status_code == 422
    assert words in response.json()["detail"][0]["msg"]
    assert client.get("/v1/jobs").json()["total"] == 0


def test_trainer_selection_is_not_a_hyperparameter(client: TestClient) -> None:
    response = client.post(
        "/v1/fine-tune", json={"repository": "repo", "hyperparameters": {"trainer": "evil"}}
    )
    assert response.status_code == 422


def test_malformed_json_and_wrong_content(client: TestClient) -> None:
    response = client.post(
        "/v1/fine-tune", content=b'{"repository": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in str(response.json()["detail"])
    assert client.post("/v1/fine-tune", content=b"[1, 2]").status_code == 422
    assert client.post("/v1/fine-tune", json={"repository": 5}).status_code == 422
    assert client.get("/v1/jobs", params={"limit": 0}).status_code == 422
    assert client.get("/v1/jobs", params={"state": "exploded"}).status_code == 422
    assert client.get("/status/job-unknown").status_code == 404
    assert client.post("/v1/jobs/job-unknown/cancel").status_code == 404


def test_a_100_mb_body_is_413_without_being_read(client: TestClient) -> None:
    big = b'{"repository": "' + b"a" * (100 * 1024 * 1024) + b'"}'
    response = client.post("/v1/fine-tune", content=big)
    assert response.status_code == 413
    assert "max_body_bytes" in response.json()["detail"]


def test_a_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks():  # no Content-Length: chunked transfer
        for _ in range(40):
            yield b"x" * 65536

    response = client.post("/v1/fine-tune", content=chunks())
    assert response.status_code == 413


def test_413_and_key_over_real_http(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/fine-tune HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
            b"Content-Length: 104857600\r\n\r\n" + b"{" * 4096
        )
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    with server.client() as http:
        assert http.post("/v1/fine-tune", json={"repository": "repo"}).status_code == 202
    server.stop()
    assert API_KEY not in server.log()


def test_a_last_event_id_that_is_no_ascii_number_resumes_from_the_start(
    client: TestClient,
) -> None:
    job_id = client.post("/v1/fine-tune", json={"repository": "repo"}).json()["job_id"]

    async def logs(last_event_id: bytes) -> httpx.Response:
        # raw header bytes (TestClient would re-encode them); latin-1 b"\xb2" is '²'
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get(
                f"/v1/jobs/{job_id}/logs?follow=false",
                headers={"Authorization": f"Bearer {API_KEY}", "Last-Event-ID": last_event_id},
            )

    for raw in (b"\xb2", b"\xb3\xb9", b"1\xb2", b"-1", b" "):
        response = asyncio.run(logs(raw))
        assert response.status_code == 200, (raw, response.text)
        assert "event: end\nid: 0\n" in response.text
    assert "id: 12\n" in asyncio.run(logs(b"12")).text


def test_a_repository_swapped_for_a_symlink_after_acceptance_is_not_mined(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = make_repo(tmp_path / "outside")
    make_repo(root / "proj")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent))  # server_toy
    settings = ServerSettings(
        runs_dir=tmp_path / "runs",
        allowed_roots=[root],
        discover_plugins=False,
        plugin_modules=["server_toy:ServerToyPlugin"],
        heartbeat_seconds=0.5,
    )
    app = create_app(settings, ForgeSettings.model_validate(TOY_SETTINGS))
    state = app.state.forge
    accepted = TestClient(app).post("/v1/fine-tune", json={"repository": "proj"})
    assert accepted.status_code == 202
    # while the job waits in the queue, someone who can write under the root swaps the folder
    shutil.rmtree(root / "proj")
    os.symlink(outside, root / "proj")
    try:
        deadline = time.monotonic() + 60
        job = state.store.get(accepted.json()["job_id"])
        while not job.terminal and time.monotonic() < deadline:
            state.supervisor.tick()  # starts the worker, then reaps it
            time.sleep(0.1)
            job = state.store.get(job.id)
    finally:
        kill_workers(settings.database_path)
    assert job.state == "failed", job
    assert job.attempts == 1  # a deterministic refusal, not retried
    assert "the repository is no longer allowed" in job.error
    assert f"resolves to {outside}, outside the allowed roots" in job.error
    assert not (Path(job.run_dir) / "mine").exists()

"""Run ``forge serve`` as a real process for the tests, and clean up every worker after.

A plain module with a unique name (see ``server_toy``). The server runs the toy
plugin in its workers (``FORGE_SERVER_PLUGIN_MODULES``), with this folder on
``PYTHONPATH``; it is stopped, and its workers' process groups killed, at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from server_toy import TOY_SETTINGS

from forge_server.jobqueue import TERMINAL, JobStore
from forge_server.supervisor import worker_alive

HERE = Path(__file__).resolve().parent
FORGE = Path(sys.executable).parent / "forge"
API_KEY = "test-key-0123456789"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toy_environment(**extra: str) -> dict[str, str]:
    """The environment of a server (and its workers) that runs the toy plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        FORGE_SERVER_PLUGIN_MODULES="server_toy:ServerToyPlugin",
        FORGE_SERVER_DISCOVER_PLUGINS="false",
        FORGE_SERVER_HEARTBEAT_SECONDS="0.4",
        FORGE_SERVER_POLL_SECONDS="0.1",
        FORGE_SERVER_CANCEL_GRACE_SECONDS="1",
    )
    env.update(extra)
    return env


def write_forge_toml(folder: Path, upstream_port: int, **sections: dict[str, Any]) -> Path:
    """A forge.toml with the toy settings, deploying to the fake upstream's port."""
    data: dict[str, Any] = json.loads(json.dumps(TOY_SETTINGS))
    data["deploy"]["port"] = upstream_port
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path = folder / "forge.toml"
    path.write_text(tomli_w.dumps(data))
    return path


class ServerProcess:
    """``forge serve`` on a free port of 127.0.0.1."""

    def __init__(
        self,
        runs_dir: Path,
        root: Path,
        config: Path,
        *,
        api_key: str | None = API_KEY,
        **env: str,
    ) -> None:
        self.runs_dir = runs_dir
        self.root = root
        self.config = config
        self.port = free_port()
        self.env = toy_environment(**env)
        if api_key:
            self.env["FORGE_SERVER_API_KEYS"] = api_key
        self.api_key = api_key
        self.log_path = runs_dir.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client with the API key."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start the server and wait for /healthz."""
        command = [str(FORGE), "serve", "--port", str(self.port), "--runs-dir", str(self.runs_dir)]
        command += ["--allow-root", str(self.root), "--config", str(self.config)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"forge serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"forge serve did not start: {self.log_path.read_text()[-3000:]}")

    def crash(self) -> None:
        """SIGKILL the server (its workers are in their own sessions and live on)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server politely, then kill what is left."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def kill_workers(database: Path) -> list[int]:
    """SIGKILL the process group of every live worker recorded in the queue."""
    killed = []
    if not database.exists():
        return killed
    store = JobStore(database)
    jobs, _ = store.page(limit=10_000)
    for job in jobs:
        if job.worker_pid and worker_alive(job.worker_pid):
            try:
                os.killpg(job.worker_pid, signal.SIGKILL)
                killed.append(job.worker_pid)
            except ProcessLookupError:
                pass
    store.close()
    return killed


def wait_for(
    client: httpx.Client, job_id: str, states: frozenset[str] = TERMINAL, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll /status until the job is in one of ``states``; return the status."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/status/{job_id}")
        assert response.status_code == 200, response.text
        status = response.json()
        if status["state"] in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states} in {timeout}s: {status}")


def make_repo(folder: Path, files: int = 6, units: int = 4) -> Path:
    """A toy repository of ``files`` files with ``units`` functions each."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        (folder / f"mod{index}.toy").write_text(
            "".join(f"def f{index}_{n}\nbody\n" for n in range(units))
        )
    return folder


def submit_with_retries(
    server: ServerProcess, body: dict[str, Any], key: str, attempts: int = 50
) -> str:
    """POST a fine-tune with an Idempotency-Key, retrying until the server answers."""
    for _ in range(attempts):
        try:
            with server.client() as http:
                response = http.post("/v1/fine-tune", json=body, headers={"Idempotency-Key": key})
            if response.status_code in (200, 202):
                return str(response.json()["job_id"])
            raise AssertionError(response.text)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"could not submit {key}")


def crash_soak(
    workdir: Path,
    jobs: int,
    crashes: int,
    *,
    concurrency: int = 2,
    timeout: float = 600.0,
    report: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Submit ``jobs`` jobs across ``crashes`` SIGKILLs of the server; check none is lost.

    Even-numbered crashes kill the workers too (their jobs are resumed on restart),
    odd-numbered ones only the server (its workers finish and are adopted). Returns a
    summary; raises AssertionError when a job is lost, duplicated or not finished.
    """
    from fake_upstream import FakeUpstream

    root = make_repo(workdir / "root" / "repo").parent
    runs = workdir / "runs"
    database = runs / "jobs.sqlite3"
    servers: list[ServerProcess] = []
    accepted: dict[str, str] = {}
    started = time.monotonic()
    with FakeUpstream() as upstream:
        config = write_forge_toml(workdir, upstream.port)

        def start() -> ServerProcess:
            server = ServerProcess(
                runs, root, config, FORGE_SERVER_MAX_CONCURRENT_JOBS=str(concurrency)
            )
            servers.append(server)
            return server.start()

        try:
            server = start()
            batch = -(-jobs // (crashes + 1))
            for crash in range(crashes + 1):
                for number in range(crash * batch, min(jobs, (crash + 1) * batch)):
                    key = f"soak-{number}"
                    accepted[key] = submit_with_retries(server, {"repository": "repo"}, key)
                if crash == crashes:
                    break
                _wait_for_running(server)
                server.crash()
                killed = kill_workers(database) if crash % 2 == 0 else []
                report(f"crash {crash + 1}: server killed, {len(killed)} worker group(s) killed")
                server = start()
            summary = _wait_all_terminal(server, set(accepted.values()), timeout)
        finally:
            for each in servers:
                each.stop()
            kill_workers(database)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["jobs"] = jobs
    summary["crashes"] = crashes
    return summary


def _wait_for_running(server: ServerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with server.client() as http:
        while time.monotonic() < deadline:
            if http.get("/v1/jobs", params={"state": "running"}).json()["total"]:
                time.sleep(0.3)
                return
            time.sleep(0.05)


def _wait_all_terminal(server: ServerProcess, ids: set[str], timeout: float) -> dict[str, Any]:
    """Wait for every job to end; check the queue holds exactly ``ids``, each run once."""
    deadline = time.monotonic() + timeout
    with server.client() as http:
        while True:
            jobs = http.get("/v1/jobs", params={"limit": 500}).json()["jobs"]
            if all(job["state"] in TERMINAL for job in jobs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert {job["id"] for job in jobs} == ids, "a job was lost or duplicated"
    assert len(jobs) == len(ids)
    unfinished = [job["id"] for job in jobs if job["state"] not in TERMINAL]
    assert not unfinished, f"jobs not finished in {timeout}s: {unfinished}"
    for job in jobs:
        log = (Path(job["run_dir"]) / "job.log").read_text(errors="replace")
        numbers = [int(n) for n in re.findall(r"^attempt (\d+): forge run", log, re.M)]
        # each attempt ran at most once, in order (one killed before it printed may be missing)
        assert numbers == sorted(set(numbers)), (job["id"], numbers)
        assert not numbers or numbers[-1] <= job["attempts"], (job["id"], numbers)
    states: dict[str, int] = {}
    for job in jobs:
        states[job["state"]] = states.get(job["state"], 0) + 1
    return {
        "states": states,
        "resumed_jobs": sum(1 for job in jobs if job["attempts"] > 1),
        "max_attempts": max((job["attempts"] for job in jobs), default=0),
    }

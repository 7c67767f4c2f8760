"""Starting and stopping servers: busy ports, redeploys, `forge llamacpp stop`, clear errors."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from llamacpp_gguf import write_tiny_gguf
from llamacpp_helpers import deploy_request

from forge_core.cli import main
from forge_llamacpp import server
from forge_llamacpp.deploy import deploy_llamacpp
from forge_llamacpp.server import (
    LlamaCppError,
    failure_message,
    is_server,
    listens_on,
    read_pid_file,
    stop_server,
    wait_until_ready,
)


def _alive(pid: int) -> bool:
    return is_server(pid)


@contextmanager
def other_server(alias: str) -> Iterator[int]:
    """Another OpenAI-like server on a loopback port (another run's, say) serving ``alias``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send({"object": "list", "data": [{"id": alias, "object": "model"}]})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send({"choices": [{"message": {"role": "assistant", "content": "x"}}]})

        def _send(self, answer: object) -> None:
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        yield int(other.server_address[1])
    finally:
        other.shutdown()
        other.server_close()


@pytest.mark.parametrize("alias", ["forge-other-run", "forge-test"])
def test_a_port_taken_after_the_check_fails_the_deploy(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alias: str
) -> None:
    """Another server takes the port between the free-port check and our server's bind:
    its answers (even under the same model name) are never taken for our server's."""
    monkeypatch.setattr(server, "port_is_free", lambda host, port: True)  # the check raced
    run = tmp_path / "run"
    with other_server(alias) as taken:
        try:
            with pytest.raises(LlamaCppError, match="exited before answering") as caught:
                deploy_llamacpp(deploy_request(tiny_gguf, run, port=taken))
        finally:
            stop_server(run / "deploy")
    message = str(caught.value)
    assert "port was taken by another process" in message and "deploy.port" in message
    assert "address already in use" in message  # the log tail
    assert not (run / "deploy" / "llamacpp.pid").exists()


def test_waiting_on_a_port_another_process_answers_names_it(tmp_path: Path) -> None:
    log = tmp_path / "llamacpp.log"
    log.write_text("still loading\n")
    loading = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with other_server("forge-other-run") as taken:
            endpoint = f"http://127.0.0.1:{taken}/v1"
            with pytest.raises(LlamaCppError, match="another process answers there") as caught:
                wait_until_ready(loading, endpoint, "forge-test", taken, log, timeout=1.0)
            assert "forge-other-run" in str(caught.value) and "deploy.port" in str(caught.value)
            assert listens_on(loading.pid, taken) is False
            assert listens_on(os.getpid(), taken) is True  # the other server is this process
    finally:
        loading.kill()
        loading.wait()


def test_busy_port_redeploy_and_stop(tiny_gguf: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        first = deploy_llamacpp(deploy_request(tiny_gguf, run, port=busy))
        try:
            assert first.details["port"] != busy
            assert any(f"port {busy}" in note and "busy" in note for note in first.details["notes"])
            assert _alive(first.pid or 0)

            # deploying the run again replaces its server
            second = deploy_llamacpp(deploy_request(tiny_gguf, run, port=busy))
            assert not _alive(first.pid or 0)
            assert any("stopped this run's previous server" in n for n in second.details["notes"])
            assert read_pid_file(run / "deploy" / "llamacpp.pid") == second.pid

            outcome = CliRunner().invoke(main, ["llamacpp", "stop", "--run-dir", str(run)])
            assert outcome.exit_code == 0, outcome.output
            assert f"pid {second.pid}" in outcome.output
            assert not _alive(second.pid or 0)
            assert not (run / "deploy" / "llamacpp.pid").exists()
            again = CliRunner().invoke(main, ["llamacpp", "stop", "--run-dir", str(run)])
            assert "no server running" in again.output
        finally:
            stop_server(run / "deploy")


def test_a_missing_gguf_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LlamaCppError, match="does not exist; run `forge export` first"):
        deploy_llamacpp(deploy_request(tmp_path / "missing.gguf", tmp_path / "run"))


def test_a_file_that_is_not_a_gguf_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf at all")
    with pytest.raises(LlamaCppError, match=r"llama\.cpp cannot load"):
        deploy_llamacpp(deploy_request(fake, tmp_path / "run"))


def test_a_gguf_without_chat_template_is_refused(tmp_path: Path) -> None:
    bare = write_tiny_gguf(tmp_path / "bare.gguf", template=None)
    with pytest.raises(LlamaCppError, match="no chat template"):
        deploy_llamacpp(deploy_request(bare, tmp_path / "run"))


def test_a_server_that_does_not_come_up_is_stopped_and_its_log_shown(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    with pytest.raises(LlamaCppError, match="did not answer") as caught:
        deploy_llamacpp(deploy_request(tiny_gguf, run, startup_timeout=0.001))
    assert "llamacpp.log" in str(caught.value)
    assert not (run / "deploy" / "llamacpp.pid").exists()


def test_a_server_that_cannot_chat_is_not_reported_as_deployed(tmp_path: Path) -> None:
    """The deploy sends one chat request: a template that always fails is caught."""
    broken = write_tiny_gguf(
        tmp_path / "broken.gguf", template="{{ raise_exception('this template refuses') }}"
    )
    run = tmp_path / "run"
    with pytest.raises(LlamaCppError, match="one-token chat request with HTTP"):
        deploy_llamacpp(deploy_request(broken, run))
    assert not (run / "deploy" / "llamacpp.pid").exists()


def test_sigill_is_explained(tmp_path: Path) -> None:
    log = tmp_path / "llamacpp.log"
    log.write_text("load_tensors: CPU_REPACK model buffer size = 1.0 MiB\n")
    message = failure_message("failed a one-token chat request", -signal.SIGILL, log)
    assert "SIGILL" in message and "AMX" in message
    assert 'export.quantizations = ["F16"]' in message
    assert "CPU_REPACK" in message


def test_a_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    """A pid file naming a process that is not a llama.cpp server is never signalled."""
    folder = tmp_path / "deploy"
    folder.mkdir()
    (folder / "llamacpp.pid").write_text(f"{os.getpid()}\n")
    assert stop_server(folder) is None
    assert not (folder / "llamacpp.pid").exists()

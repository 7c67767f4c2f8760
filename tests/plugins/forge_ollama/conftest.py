"""Fixtures of the Ollama tests: a running fake Ollama, the tiny GGUF, a free port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from ollama_helpers import FakeState, gguf_helper, start_fake_ollama


@pytest.fixture
def fake_ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeState]]:
    """A running fake Ollama; ``OLLAMA_HOST`` points at it for the test."""
    server, thread, state = start_fake_ollama()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("OLLAMA_HOST", host)
    try:
        yield host, state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny chat GGUF (tinycoder-style template, <|end|> as end of turn)."""
    folder = tmp_path_factory.mktemp("ollama-gguf")
    path: Path = gguf_helper.write_tiny_gguf(folder / "model-F32.gguf")
    return path


@pytest.fixture
def free_port() -> int:
    """A TCP port nothing listens on (for 'Ollama is not running')."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

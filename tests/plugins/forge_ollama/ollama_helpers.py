"""Helpers for the Ollama tests: a fake Ollama server (real HTTP) and the tiny GGUF writer.

The fake implements the endpoints the deploy and CLI use, with Ollama's shapes:
``/api/version``, ``HEAD``/``POST /api/blobs/<digest>`` (digest checked),
``/api/create`` (files must be uploaded blobs), ``/api/chat`` (renders the
model's TEMPLATE the way Ollama feeds it, with forge_ollama.gotemplate, and
records the prompt), ``/api/tags`` and ``DELETE /api/delete``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def _load_gguf_helper() -> Any:
    """The tiny-GGUF writer shared with the llama.cpp tests (one helper, not two copies)."""
    path = HERE.parent / "forge_llamacpp" / "llamacpp_gguf.py"
    spec = importlib.util.spec_from_file_location("llamacpp_gguf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gguf_helper = _load_gguf_helper()


@dataclass
class FakeState:
    """What the fake Ollama holds and saw."""

    blobs: dict[str, int] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: int = 0
    prompts: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_chat: bool = False


def _full_name(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class _Handler(BaseHTTPRequestHandler):
    state: FakeState

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, code: int, payload: Any = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.state.requests.append(("GET", self.path))
        if self.path == "/api/version":
            self._send(200, {"version": "0.9.9-fake"})
        elif self.path == "/api/tags":
            models = [
                {
                    "name": name,
                    "model": name,
                    "modified_at": model["modified_at"],
                    "size": model["size"],
                    "digest": model["digest"],
                    "details": {"format": "gguf", "family": "llama"},
                }
                for name, model in self.state.models.items()
            ]
            self._send(200, {"models": models})
        else:
            self._send(404, {"error": "not found"})

    def do_HEAD(self) -> None:
        self.state.requests.append(("HEAD", self.path))
        digest = self.path.rsplit("/", 1)[-1]
        self._send(200 if digest in self.state.blobs else 404)

    def do_POST(self) -> None:
        self.state.requests.append(("POST", self.path))
        body = self._body()
        if self.path.startswith("/api/blobs/"):
            digest = self.path.rsplit("/", 1)[-1]
            if f"sha256:{hashlib.sha256(body).hexdigest()}" != digest:
                self._send(400, {"error": "digest mismatch"})
                return
            self.state.blobs[digest] = len(body)
            self.state.uploads += 1
            self._send(201)
            return
        request = json.loads(body or b"{}")
        if self.path == "/api/create":
            self._create(request)
        elif self.path == "/api/chat":
            self._chat(request)
        else:
            self._send(404, {"error": "not found"})

    def _create(self, request: dict[str, Any]) -> None:
        files = request.get("files") or {}
        missing = [d for d in files.values() if d not in self.state.blobs]
        if not files or missing:
            self._send(400, {"error": f"missing blobs {missing}"})
            return
        if "ADAPTER" in json.dumps(request) or request.get("adapters"):
            self._send(400, {"error": "adapters are not supported"})
            return
        digest = next(iter(files.values()))
        self.state.models[_full_name(request["model"])] = {
            "request": request,
            "size": self.state.blobs[digest],
            "digest": digest.removeprefix("sha256:"),
            "modified_at": "2025-01-01T00:00:00Z",
        }
        if request.get("stream", True):
            lines = [{"status": "parsing GGUF"}, {"status": "success"}]
            body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._send(200, {"status": "success"})

    def _chat(self, request: dict[str, Any]) -> None:
        from forge_ollama.gotemplate import ollama_prompt

        model = self.state.models.get(_full_name(request.get("model", "")))
        if model is None:
            self._send(404, {"error": f"model '{request.get('model')}' not found"})
            return
        if self.state.fail_chat:
            self._send(500, {"error": "llama runner process has terminated"})
            return
        created = model["request"]
        messages = [{"role": m["role"], "content": m["content"]} for m in request["messages"]]
        prompt = ollama_prompt(created["template"], messages, system=created.get("system"))
        self.state.prompts.append(prompt)
        self._send(
            200,
            {
                "model": request["model"],
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": "ready"},
                "done": True,
                "done_reason": "stop",
            },
        )

    def do_DELETE(self) -> None:
        self.state.requests.append(("DELETE", self.path))
        request = json.loads(self._body() or b"{}")
        name = _full_name(request.get("model", ""))
        if self.state.models.pop(name, None) is None:
            self._send(404, {"error": f"model '{request.get('model')}' not found"})
        else:
            self._send(200)


def start_fake_ollama() -> tuple[ThreadingHTTPServer, threading.Thread, FakeState]:
    """Serve a fresh fake Ollama on a free port of 127.0.0.1, in a daemon thread."""
    state = FakeState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, state

"""Talking to an Ollama server through the official ``ollama`` client.

Blobs are checked with ``HEAD /api/blobs/<digest>`` first (the client has no
call for it), so a GGUF already on the server is not uploaded again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from forge_core.runs import RunError
from forge_ollama.modelfile import ModelSpec, is_forge_model

DEFAULT_HOST = "http://127.0.0.1:11434"
VERIFY_MESSAGES = [{"role": "user", "content": "Reply with one short sentence: are you ready?"}]


class OllamaError(RunError):
    """Ollama refused a request (the message says which and why)."""


class OllamaUnavailable(OllamaError):
    """No Ollama server answers at the configured address."""


def resolve_host(configured: str | None = None) -> str:
    """``deploy.ollama_host``, else ``$OLLAMA_HOST``, else the local default, as a URL."""
    raw = (configured or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # a listen address: connect through the loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 11434)
    return f"{parts.scheme}://{host}:{port}{parts.path}"


def unreachable_message(host: str, reason: object) -> str:
    """What to tell a user whose Ollama is not running."""
    return (
        f"Ollama is not reachable at {host} ({reason}). Start it with `ollama serve` (or the "
        "Ollama desktop app), or set OLLAMA_HOST (or deploy.ollama_host) to the address of a "
        "running server, e.g. OLLAMA_HOST=http://127.0.0.1:11434"
    )


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file, as Ollama names blobs."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


class Ollama:
    """One Ollama server."""

    def __init__(self, host: str | None = None, *, timeout: float | None = None) -> None:
        import ollama

        self.host = resolve_host(host)
        self.client = ollama.Client(host=self.host, timeout=timeout)

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; turn the client's errors into Forge's."""
        import ollama

        try:
            return call(*args, **kwargs)
        except ConnectionError as exc:
            raise OllamaUnavailable(unreachable_message(self.host, exc)) from exc
        except ollama.ResponseError as exc:
            raise OllamaError(f"Ollama at {self.host} refused to {what}: {exc.error}") from exc
        except httpx.HTTPError as exc:
            raise OllamaError(f"Ollama at {self.host} failed to {what}: {exc}") from exc

    def version(self) -> str:
        """The server's version (``GET /api/version``); raises OllamaUnavailable."""
        try:
            response = httpx.get(f"{self.host}/api/version", timeout=5.0)
            response.raise_for_status()
            return str(response.json().get("version", "unknown"))
        except (httpx.HTTPError, ValueError) as exc:
            raise OllamaUnavailable(unreachable_message(self.host, exc)) from exc

    def has_blob(self, digest: str) -> bool:
        """Whether the server already holds the blob (``HEAD /api/blobs/<digest>``)."""
        try:
            response = httpx.head(f"{self.host}/api/blobs/{digest}", timeout=30.0)
        except httpx.HTTPError as exc:
            raise OllamaUnavailable(unreachable_message(self.host, exc)) from exc
        return response.status_code == 200

    def push_blob(self, path: Path) -> tuple[str, bool]:
        """Upload a file as a blob unless the server has it; return (digest, uploaded)."""
        digest = file_digest(path)
        if self.has_blob(digest):
            return digest, False
        uploaded = self._call("store the model file", self.client.create_blob, path)
        if uploaded != digest:
            raise OllamaError(f"the upload of {path} changed its digest ({uploaded} != {digest})")
        return digest, True

    def create(self, spec: ModelSpec, digest: str) -> None:
        """Create (or replace) the model from the uploaded GGUF."""
        response = self._call(
            f"create the model {spec.name}",
            self.client.create,
            model=spec.name,
            files={"model.gguf": digest},
            template=spec.template,
            system=spec.system,
            parameters=spec.create_parameters(),
            stream=False,
        )
        if getattr(response, "status", "success") != "success":
            raise OllamaError(f"Ollama did not create {spec.name}: {response.status}")

    def verify(self, name: str) -> str:
        """One short chat request; the model's reply."""
        response = self._call(
            f"answer a chat with {name}",
            self.client.chat,
            model=name,
            messages=VERIFY_MESSAGES,
            options={"num_predict": 16, "temperature": 0},
        )
        return str(response.message.content or "")

    def models(self, *, forge_only: bool = True) -> list[dict[str, Any]]:
        """The server's models (Forge's only, by default), newest first."""
        listed = self._call("list its models", self.client.list)
        rows = [
            {
                "name": model.model,
                "size": model.size,
                "modified_at": model.modified_at.isoformat() if model.modified_at else "",
                "digest": model.digest,
            }
            for model in listed.models
            if model.model and (is_forge_model(model.model) or not forge_only)
        ]
        return sorted(rows, key=lambda row: row["modified_at"], reverse=True)

    def remove(self, name: str) -> None:
        """Delete a model."""
        self._call(f"remove {name}", self.client.delete, name)

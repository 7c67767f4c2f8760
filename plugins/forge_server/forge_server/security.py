"""Security: bearer API keys, the request body limit, and repository path checks.

The two middlewares are plain ASGI so they work before any body is read and do
not buffer streaming responses. Keys are compared in constant time (as sha256
digests, so not even their length leaks) and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths served without a key.
PUBLIC_PATHS = frozenset({"/healthz"})
#: Paths whose errors use OpenAI's ``{"error": {...}}`` shape, for OpenAI clients.
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


class PathRefused(Exception):
    """A repository or model path the server will not use; ``status`` is 403 or 422."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_body(path: str, status: int, message: str, code: str) -> dict[str, Any]:
    """The JSON error body: OpenAI's shape on the OpenAI endpoints, else ``{"detail"}``."""
    if path.startswith(OPENAI_PATHS):
        kind = "invalid_request_error" if status < 500 else "api_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return {"detail": message}


async def send_error(
    scope: Scope, send: Send, status: int, message: str, code: str, headers: dict[str, str]
) -> None:
    """Send a complete JSON error response from a middleware."""
    body = json.dumps(error_body(scope.get("path", ""), status, message, code)).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class APIKeyMiddleware:
    """Require ``Authorization: Bearer <key>`` on every path but /healthz, when keys are set."""

    def __init__(self, app: ASGIApp, keys: list[bytes]) -> None:
        self.app = app
        self.digests = [_digest(key) for key in keys]

    def authorized(self, header: bytes | None) -> bool:
        """Constant-time check of an Authorization header against every key."""
        if header is None:
            return False
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return False
        offered = _digest(token.strip())
        matched = False
        for digest in self.digests:  # no early exit: the time does not depend on which key
            matched |= hmac.compare_digest(offered, digest)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.digests or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        if self.authorized(header):
            await self.app(scope, receive, send)
            return
        message = (
            "missing API key: send 'Authorization: Bearer <key>'"
            if header is None
            else "invalid API key"
        )
        await send_error(
            scope, send, 401, message, "invalid_api_key", {"www-authenticate": "Bearer"}
        )


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body too large: the limit is {self.limit} bytes (max_body_bytes)"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await send_error(scope, send, 400, "invalid Content-Length", "bad_request", {})
                return
            if size > self.limit:
                await send_error(
                    scope, send, 413, message, "body_too_large", {"connection": "close"}
                )
                return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > self.limit:
                    if not started and not refused:
                        refused = True
                        await send_error(
                            scope, send, 413, message, "body_too_large", {"connection": "close"}
                        )
                    return {"type": "http.disconnect"}
            return incoming

        async def guarded_send(outgoing: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 already went out; drop what the app says after it
            if outgoing["type"] == "http.response.start":
                started = True
            await send(outgoing)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise


# --------------------------------------------------------------------------- paths


def inside(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or below it (both already resolved)."""
    return path == root or root in path.parents


def resolve_repository(raw: str, roots: list[Path]) -> Path:
    """The resolved repository folder, or :class:`PathRefused` saying why not.

    Relative paths are taken relative to each allowed root in turn. Symlinks are
    resolved before the check, so a link inside a root that points outside is refused.
    """
    if "\x00" in raw:
        raise PathRefused(422, "repository: the path contains a NUL byte")
    if not roots:
        raise PathRefused(
            403,
            "no repository roots are allowed on this server; start it with "
            "`forge serve --allow-root PATH` or set FORGE_SERVER_ALLOWED_ROOTS",
        )
    given = Path(raw)  # taken literally: no ~ expansion on the server's side
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if not any(inside(resolved, root) for root in roots):
            raise PathRefused(
                403,
                f"repository {raw!r} resolves to {resolved}, outside the allowed roots "
                f"({', '.join(map(str, roots))})",
            )
        if not resolved.is_dir():
            raise PathRefused(422, f"repository {raw!r} is not a directory")
        return resolved
    lexical = [Path(*_normalise(c)) for c in candidates]
    if not any(inside(path, root) for path in lexical for root in roots):
        raise PathRefused(403, f"repository {raw!r} is outside the allowed roots")
    raise PathRefused(422, f"repository {raw!r} does not exist under the allowed roots")


def _normalise(path: Path) -> list[str]:
    """``path``'s parts with ``..`` applied lexically (for a path that does not exist)."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if len(parts) > 1:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return parts or ["/"]


def check_base_model(raw: str, roots: list[Path]) -> None:
    """A base model is a registered name, a hub id, or a local folder inside the roots."""
    if "\x00" in raw:
        raise PathRefused(422, "base_model: the name contains a NUL byte")
    if ".." in Path(raw).parts:
        raise PathRefused(422, f"base_model {raw!r}: '..' is not allowed")
    if raw.startswith("~"):
        raise PathRefused(422, f"base_model {raw!r}: give a local model as an absolute path")
    given = Path(raw)
    if not given.is_absolute():
        return  # a registered name or a hub id like 'Qwen/Qwen2.5-Coder-0.5B'
    try:
        resolved = given.resolve()
    except (OSError, RuntimeError) as exc:
        raise PathRefused(422, f"base_model {raw!r}: {exc}") from None
    if not any(inside(resolved, root) for root in roots):
        raise PathRefused(403, f"base_model {raw!r} is a path outside the allowed roots")

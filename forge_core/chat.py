"""A small OpenAI-compatible chat client on the standard library (used by ``forge chat``).

The core must stay light, so this speaks the ``/v1/chat/completions`` protocol
with ``urllib`` instead of depending on the ``openai`` package; streaming
answers arrive as server-sent events and are yielded piece by piece.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


class ChatError(RuntimeError):
    """The chat endpoint could not be reached or answered with an error."""


def stream_chat(
    endpoint: str,
    model: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int = 256,
    temperature: float = 0.0,
    api_key: str | None = None,
    timeout: float = 300.0,
) -> Iterator[str]:
    """Yield the assistant's answer in pieces as the server streams it."""
    body = json.dumps(
        {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
    ).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = endpoint.rstrip("/") + "/chat/completions"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise ChatError(f"{url} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ChatError(
            f"cannot reach {url} ({exc}); is the model deployed? run `forge deploy`"
        ) from exc
    with response:
        for raw in response:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue
            payload = line[len("data:") :].strip()
            if payload == "[DONE]":
                return
            chunk: dict[str, Any] = json.loads(payload)
            for choice in chunk.get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece


def endpoint_answers(endpoint: str, timeout: float = 2.0) -> bool:
    """True when ``GET {endpoint}/models`` answers 200: something serves the API there."""
    url = endpoint.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False

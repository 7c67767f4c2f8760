"""A small OpenAI-compatible chat client on the standard library (used by ``forge chat``).

The core must stay light, so this speaks the ``/v1/chat/completions`` protocol
with ``urllib`` instead of depending on the ``openai`` package; streaming
answers arrive as server-sent events and are yielded piece by piece. A stream
is complete only when it ends with ``[DONE]`` or a ``finish_reason``: an error
event, a broken connection or a stream that just stops is a :class:`ChatError`.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

#: Roles that carry the system prompt (``developer`` is OpenAI's newer name for it).
SYSTEM_ROLES = frozenset({"system", "developer"})
#: The tag Ollama's ``/v1/models`` lists a model under when it was created without one.
DEFAULT_TAG = ":latest"
#: The most bytes of a ``GET /models`` answer read (a list of names).
MAX_MODELS_BYTES = 1 << 20
#: The most model names an error message lists.
MAX_NAMES_SHOWN = 10


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
        yield from _answer_pieces(response, url)


def _answer_pieces(lines: Iterable[bytes], url: str) -> Iterator[str]:
    """The content pieces of a streamed answer; a ChatError unless the answer completes."""
    finished = False
    try:
        for data, ended in server_sent_data(lines):
            if data.strip() == "[DONE]":
                return
            if not data.strip():
                continue
            try:
                chunk = json.loads(data)
            except ValueError:
                if not ended:  # cut in the middle of its last event
                    break
                chunk = None
            if not isinstance(chunk, dict):
                raise ChatError(f"{url} sent an event that is not a chat chunk: {data[:200]!r}")
            if chunk.get("error") is not None:
                raise ChatError(f"{url} failed mid-answer: {_error_message(chunk['error'])}")
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                finished = finished or bool(choice.get("finish_reason"))
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece
    except (OSError, http.client.HTTPException) as exc:
        reason = str(exc) or type(exc).__name__
        raise ChatError(
            f"the stream from {url} broke before the answer was complete ({reason})"
        ) from exc
    if not finished:
        raise ChatError(
            "the stream ended before the answer was complete (no finish_reason, no [DONE]): "
            f"the model server at {url} failed mid-answer (a prompt longer than its context?); "
            "see its log"
        )


def server_sent_data(lines: Iterable[bytes]) -> Iterator[tuple[str, bool]]:
    """The data of each server-sent event, and whether a blank line ended the event.

    As the SSE spec says: an event ends at a blank line, its ``data:`` lines are
    joined with newlines, comments (``:``) and other fields are skipped, lines end
    in LF, CRLF or CR. The last event, when the stream stops before its blank
    line, comes with False.
    """
    data: list[str] = []
    first = True
    for raw in lines:
        if first:
            raw, first = raw.removeprefix(b"\xef\xbb\xbf"), False
        for encoded in raw.splitlines() or [b""]:
            line = encoded.decode("utf-8", "replace")
            if not line:
                if data:
                    yield "\n".join(data), True
                data = []
                continue
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data), False


def _error_message(error: Any) -> str:
    """The message of an error object (OpenAI's ``{"message": ...}``, or anything)."""
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return error if isinstance(error, str) else json.dumps(error)


def deployed_system_prompt(details: Mapping[str, Any]) -> str | None:
    """The system prompt a deployment's details record (llama.cpp's; Ollama bakes it in)."""
    prompt = details.get("system_prompt")
    return prompt if isinstance(prompt, str) else None


def with_system_prompt(
    messages: list[dict[str, Any]], system_prompt: str | None
) -> list[dict[str, Any]]:
    """``messages`` with the system prompt first, unless there is none or they carry one."""
    if system_prompt is None or any(m.get("role") in SYSTEM_ROLES for m in messages):
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def _models_answer(endpoint: str, timeout: float) -> bytes | None:
    """The body of a 200 answer to ``GET {endpoint}/models``; None without one."""
    url = endpoint.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return bytes(response.read(MAX_MODELS_BYTES))
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return None


def _model_ids(body: bytes) -> list[str] | None:
    """The ids of a model list in OpenAI's shape (``{"data": [{"id": ...}]}``), else None."""
    try:
        listed = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(listed, list):
        return None
    return [str(card["id"]) for card in listed if isinstance(card, dict) and "id" in card]


def served_models(endpoint: str, timeout: float = 2.0) -> list[str] | None:
    """The model ids ``GET {endpoint}/models`` lists; None when it answers no such list."""
    body = _models_answer(endpoint, timeout)
    return None if body is None else _model_ids(body)


def serves(model_ids: Iterable[str], model: str) -> bool:
    """Whether ``model`` is among ``model_ids``, Ollama's ``:latest`` tag aside."""
    wanted = model.removesuffix(DEFAULT_TAG)
    return any(served.removesuffix(DEFAULT_TAG) == wanted for served in model_ids)


def endpoint_answers(endpoint: str, model: str | None = None, timeout: float = 2.0) -> bool:
    """True when ``GET {endpoint}/models`` answers 200 and, with ``model``, lists that model.

    Without ``model`` anything serving the API counts; with it, another run's
    server that took the port does not.
    """
    body = _models_answer(endpoint, timeout)
    if body is None or model is None:
        return body is not None
    model_ids = _model_ids(body)
    return model_ids is not None and serves(model_ids, model)


def check_model_served(endpoint: str, model: str, timeout: float = 2.0) -> None:
    """Raise ChatError when ``endpoint`` lists its models and ``model`` is not among them.

    One ``GET /models`` before chatting. An endpoint that does not answer with a
    list is not judged here: the chat request then says what is wrong.
    """
    model_ids = served_models(endpoint, timeout)
    if model_ids is None or serves(model_ids, model):
        return
    shown = ", ".join(model_ids[:MAX_NAMES_SHOWN]) or "no model"
    if len(model_ids) > MAX_NAMES_SHOWN:
        shown += f" and {len(model_ids) - MAX_NAMES_SHOWN} more"
    raise ChatError(
        f"{endpoint} serves {shown}, not {model}: the deployed server is gone or another "
        "took its address; run `forge deploy` again"
    )

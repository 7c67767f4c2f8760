"""A fake OpenAI-compatible model server (standing in for llama.cpp's), on http.server.

It answers ``POST /v1/chat/completions`` (plain or streamed as server-sent events,
chunked transfer like llama.cpp) with ``echo: <last user message>``, one word per
chunk, waiting ``token_delay`` seconds per word to imitate generation, and records
every request (body and headers) it got. Used by the tests and by ``bench/server.py``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeUpstream:
    """The server, run in a thread on 127.0.0.1 (``with FakeUpstream() as up: up.port``)."""

    def __init__(self, token_delay: float = 0.0) -> None:
        self.token_delay = token_delay
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer_words(self, body: dict[str, Any]) -> list[str]:
        """The words of the answer to a request."""
        question = next(
            (m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), ""
        )
        words = ["echo:", *str(question).split()]
        limit = body.get("max_tokens")
        return words[:limit] if isinstance(limit, int) else words

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                upstream.requests.append(body)
                upstream.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found", "type": "not_found"}})
                elif body.get("model") == "missing-upstream-model":
                    self._json(400, {"error": {"message": "unknown model", "type": "invalid"}})
                elif body.get("stream"):
                    self._stream(body)
                else:
                    self._complete(body)

            def _json(self, status: int, data: dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _complete(self, body: dict[str, Any]) -> None:
                words = upstream.answer_words(body)
                time.sleep(upstream.token_delay * len(words))
                prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
                self._json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": " ".join(words)},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": len(words),
                            "total_tokens": prompt + len(words),
                        },
                    },
                )

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _stream(self, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                words = upstream.answer_words(body)
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk"}
                base |= {"created": int(time.time()), "model": body.get("model", "fake")}
                for index, word in enumerate(words):
                    time.sleep(upstream.token_delay)
                    piece = word if index == 0 else " " + word
                    delta = {"content": piece} | ({"role": "assistant"} if index == 0 else {})
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                    self._chunk(f"data: {json.dumps(base | {'choices': [choice]})}\n\n".encode())
                done = {"index": 0, "delta": {}, "finish_reason": "stop"}
                self._chunk(f"data: {json.dumps(base | {'choices': [done]})}\n\n".encode())
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = {"prompt_tokens": 1, "completion_tokens": len(words)}
                    usage["total_tokens"] = 1 + len(words)
                    final = base | {"choices": [], "usage": usage}
                    self._chunk(f"data: {json.dumps(final)}\n\n".encode())
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler

"""A fake OpenAI-compatible chat server for the chat client tests, on 127.0.0.1.

``POST /v1/chat/completions`` answers with the bytes of ``stream`` as they are (so a test
can send any server-sent events, broken ones included) and records the request body;
``GET /v1/models`` answers ``models`` as JSON, or 404 when it is None.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def chunk(text: str, finish_reason: str | None = None) -> str:
    """One streamed chat chunk as a server-sent event."""
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish_reason}
    return f"data: {json.dumps({'choices': [choice]})}\n\n"


def model_list(*names: str) -> dict[str, Any]:
    """A ``GET /models`` answer listing ``names``."""
    return {"object": "list", "data": [{"id": name, "object": "model"} for name in names]}


class FakeChatServer:
    """The server, in a thread (``with FakeChatServer(stream) as server: server.endpoint``)."""

    def __init__(
        self,
        stream: str | bytes = "",
        models: Any = None,
        cut_after: int | None = None,
        port: int = 0,
    ) -> None:
        self.stream = stream.encode() if isinstance(stream, str) else stream
        self.models = models
        #: Send the stream chunked, claiming ``cut_after`` more bytes than it sends, then close.
        self.cut_after = cut_after
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The OpenAI base URL (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                if self.path != "/v1/models" or fake.models is None:
                    self.send_error(404)
                    return
                body = json.dumps(fake.models).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                fake.requests.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if fake.cut_after is None:  # the body ends when the connection closes
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(fake.stream)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                size = len(fake.stream) + fake.cut_after
                self.wfile.write(f"{size:x}\r\n".encode() + fake.stream)
                self.wfile.flush()
                self.close_connection = True

        return Handler

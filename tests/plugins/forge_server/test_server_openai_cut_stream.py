"""A model server that dies in the middle of a streamed answer: the client gets whole
events, then an error event, never half an event with the error glued to it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from server_helpers import API_KEY
from test_server_openai_system_prompt import deploy

from forge_server.api_openai import whole_events

FIRST = b'data: {"choices":[{"index":0,"delta":{"content":"echo:"}}]}\n\n'
HALF = b'data: {"choices":[{"index":0,"delta":{"con'


class CuttingUpstream:
    """Answers one streamed chat with a whole event and half of the next, then hangs up."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += connection.recv(65536)
            payload = FIRST + HALF
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + f"{len(payload):x}\r\n".encode()
                + payload
                + b"\r\n"
            )
        # closed without the last chunk: the stream is cut inside the second event

    def __enter__(self) -> CuttingUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()


@pytest.fixture
def cutting_upstream() -> Iterator[CuttingUpstream]:
    with CuttingUpstream() as server:
        yield server


def test_a_cut_stream_ends_with_whole_events_then_the_error(
    client: TestClient, cutting_upstream: CuttingUpstream
) -> None:
    deploy(client, cutting_upstream, "forge-cut", {"n_ctx": 2048})  # type: ignore[arg-type]

    async def stream() -> bytes:
        transport = httpx.ASGITransport(app=client.app)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://forge", headers=headers
        ) as http:
            body = {
                "model": "forge-cut",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
            response = await http.post("/v1/chat/completions", json=body)
            assert response.status_code == 200
            return response.content

    received = asyncio.run(stream())
    assert received.startswith(FIRST)
    events = received.split(b"\n\n")
    assert events[-1] == b""  # ends with a whole event
    payloads = [event.removeprefix(b"data: ") for event in events[:-1]]
    assert payloads[-1] == b"[DONE]"
    error = json.loads(payloads[-2])["error"]
    assert error["code"] == "upstream_unreachable"
    assert b"con" not in received[len(FIRST) :]  # the half event was dropped, not relayed
    for payload in payloads[:-1]:
        json.loads(payload)  # every event the client got parses


def test_whole_events_holds_back_an_unfinished_event() -> None:
    async def chunks(parts: list[bytes], fail: bool) -> AsyncIterator[bytes]:
        for part in parts:
            yield part
        if fail:
            raise httpx.ReadError("cut")

    async def collect(parts: list[bytes], fail: bool = False) -> list[bytes]:
        return [piece async for piece in whole_events(chunks(parts, fail))]

    parts = [b"data: 1\n", b"\ndata: 2\r\n\r\nda", b"ta: 3\n\n", b"data: [DONE]\n\n"]
    assert asyncio.run(collect(parts)) == [
        b"data: 1\n\ndata: 2\r\n\r\n",  # whatever completes events goes at once
        b"data: 3\n\n",
        b"data: [DONE]\n\n",
    ]
    assert asyncio.run(collect([b"data: 1\n\nda", b"ta: tail"])) == [b"data: 1\n\n", b"data: tail"]
    given: list[bytes] = []

    async def until_failure() -> None:
        async for piece in whole_events(chunks([b"data: 1\n\ndata: 2", b"xx"], fail=True)):
            given.append(piece)

    with pytest.raises(httpx.ReadError):
        asyncio.run(until_failure())
    assert given == [b"data: 1\n\n"]

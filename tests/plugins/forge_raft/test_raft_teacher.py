"""The optional teacher, against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from forge_core.config import TeacherSettings
from forge_core.contracts import CodeUnit, SynthesizeRequest
from forge_raft.answers import extract_quotes
from forge_raft.documents import Documents
from forge_raft.synthesis import synthesize_examples
from forge_raft.teacher import Teacher, TeacherError, parse_pairs

DOCUMENT_BODY = re.compile(
    r'<DOCUMENT path="[^"]*" name="(?P<name>[^"]*)"[^>]*>\n(?P<body>.*?)\n</DOCUMENT>', re.DOTALL
)


class FakeServer:
    """An OpenAI-compatible chat endpoint that writes one RAFT pair about the unit it is shown."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[str] = []
        self.fail_next: list[int] = []  # HTTP statuses to answer the next requests with
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(self.headers.get("Authorization", ""))
                if server.fail_next:
                    self._send(server.fail_next.pop(0), {"error": {"message": "try later"}})
                    return
                reply = server.reply(body["messages"][-1]["content"])
                self._send(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

            def _send(self, status: int, data: dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def reply(prompt: str) -> str:
        """A pair quoting the document's first line; about `restock`, a paraphrase instead."""
        document = DOCUMENT_BODY.search(prompt)
        assert document is not None
        name, first_line = document["name"], document["body"].split("\n", 1)[0]
        quote = "def restock(self, sku, n):" if name == "Stock.restock" else first_line
        return (
            f"<QUESTION>: What is the first line of `{name}`?\n"
            f"<REASONING>: The code starts with ##begin_quote##{quote}##end_quote##.\n"
            f"<ANSWER>: {quote}\n"
        )


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A running fake endpoint."""
    fake = FakeServer()
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


@pytest.fixture
def stock_units(units: list[CodeUnit]) -> list[CodeUnit]:
    """The units of one fixture file."""
    return [u for u in units if u.path == "python/inventory/stock.py"]


def run(units: list[CodeUnit], server: FakeServer, cache: Path, **teacher: Any):
    """Synthesize with the teacher on, pointed at the fake server."""
    settings = {
        "question_types": ["location"],
        "oracle_probability": 0.7,
        "teacher": {"enabled": True, "base_url": server.url, "model": "fake-coder", **teacher},
    }
    return synthesize_examples(
        SynthesizeRequest(units=units, settings=settings, seed=0, cache_dir=str(cache))
    )


def test_teacher_examples_are_checked_and_cached(
    stock_units: list[CodeUnit], server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request per unit, verbatim pairs kept, paraphrases rejected; a rerun asks nothing."""
    monkeypatch.setenv("FAKE_TEACHER_KEY", "s3cret")
    first = run(stock_units, server, tmp_path, api_key_env="FAKE_TEACHER_KEY")
    assert len(server.requests) == len(stock_units)
    assert set(server.headers) == {"Bearer s3cret"}
    assert {r["model"] for r in server.requests} == {"fake-coder"}
    taught = [e for e in first.examples if e.question_type == "teacher"]
    assert {e.oracle_id for e in taught} == {u.id for u in stock_units} - {
        "python/inventory/stock.py::Stock.restock"
    }
    assert first.stats["teacher.rejected"] == 1
    assert first.stats["teacher.accepted"] == len(stock_units) - 1
    for example in taught:
        assert example.messages[1].content.endswith(
            f"Question: What is the first line of `{example.oracle_id.split('::')[1]}`?"
        )
        if example.oracle_in_context:
            oracle = next(u for u in stock_units if u.id == example.oracle_id)
            for quote in extract_quotes(example.messages[2].content):
                assert quote in oracle.source
        else:
            assert example.final_answer.startswith("The provided context does not contain")
    assert any(not e.oracle_in_context for e in taught) and any(e.oracle_in_context for e in taught)
    entries = list((tmp_path / "teacher").rglob("*.json"))
    assert len(entries) == len(stock_units)
    assert {p.parent.name for p in entries} == {u.content_hash for u in stock_units}

    second = run(stock_units, server, tmp_path, api_key_env="FAKE_TEACHER_KEY")
    assert len(server.requests) == len(stock_units)  # all from the cache
    assert second.stats["teacher.cache_hits"] == len(stock_units)
    assert [e.model_dump() for e in second.examples] == [e.model_dump() for e in first.examples]


def test_missing_key_sends_none(
    stock_units: list[CodeUnit], server: FakeServer, tmp_path: Path
) -> None:
    """Local servers need no key: the client sends `none` when the variable is unset."""
    run(stock_units[:1], server, tmp_path, api_key_env="FORGE_RAFT_TEST_UNSET_KEY")
    assert server.headers == ["Bearer none"]


def test_retries_with_exponential_backoff(stock_units: list[CodeUnit], server: FakeServer) -> None:
    """Transient failures are asked again after 1×, 2×, 4× the base delay."""
    server.fail_next = [500, 503, 429]
    slept: list[float] = []
    settings = TeacherSettings(enabled=True, base_url=server.url, model="m", max_retries=3)
    teacher = Teacher(settings, None, backoff_seconds=0.01, sleep=slept.append)
    unit = stock_units[0]
    assert teacher.pairs(unit, Documents(1500).of(unit))
    assert slept == [0.01, 0.02, 0.04]
    assert len(server.requests) == 4 and teacher.stats["teacher.retries"] == 3


def test_gives_up_with_a_clear_error(stock_units: list[CodeUnit], server: FakeServer) -> None:
    """After max_retries, or at once for a client error, the error names the endpoint."""
    unit = stock_units[0]
    server.fail_next = [500, 500]
    settings = TeacherSettings(enabled=True, base_url=server.url, model="m", max_retries=1)
    teacher = Teacher(settings, None, backoff_seconds=0.0, sleep=lambda s: None)
    with pytest.raises(TeacherError, match=re.escape(server.url) + ".*after 2 attempts"):
        teacher.pairs(unit, Documents(1500).of(unit))
    server.fail_next = [401]
    with pytest.raises(TeacherError, match="HTTP 401"):
        teacher.pairs(unit, Documents(1500).of(unit))
    assert len(server.requests) == 3


def test_unreachable_endpoint(stock_units: list[CodeUnit]) -> None:
    """A closed port is a connection error, retried, then reported."""
    settings = TeacherSettings(
        enabled=True, base_url="http://127.0.0.1:9/v1", max_retries=1, timeout_seconds=2
    )
    teacher = Teacher(settings, None, backoff_seconds=0.0, sleep=lambda s: None)
    with pytest.raises(TeacherError, match=re.escape("127.0.0.1:9")):
        teacher.pairs(stock_units[0], Documents(1500).of(stock_units[0]))


@pytest.mark.parametrize(
    ("reply", "accepted", "rejected"),
    [
        (
            "<QUESTION>: Q?\n<REASONING>: see ##begin_quote##return 1##end_quote##.\n<ANSWER>: one",
            1,
            0,
        ),
        (
            "<QUESTION>: Q?\n<REASONING>: see ##begin_quote##return 2##end_quote##.\n<ANSWER>: two",
            0,
            1,
        ),
        ("<QUESTION>: Q?\n<REASONING>: no quote at all.\n<ANSWER>: one", 0, 1),
        ("<QUESTION>: Q?\n<REASONING>: ##begin_quote##return 1 and no end.\n<ANSWER>: one", 0, 1),
        ("<QUESTION>: Q?\n<REASONING>: ##begin_quote##return 1##end_quote##", 0, 1),
        ("<QUESTION>: Q?\nno reasoning marker", 0, 1),
        ("Sure! Here are some questions.", 0, 1),
        (
            "<QUESTION>: A?\n<REASONING>: ##begin_quote##def f():##end_quote##\n<ANSWER>: f\n"
            "<QUESTION>: B?\n<REASONING>: ##begin_quote##def g():##end_quote##\n<ANSWER>: g\n",
            1,
            1,
        ),
    ],
)
def test_parse_pairs(reply: str, accepted: int, rejected: int) -> None:
    """Only well-formed pairs whose quotes are verbatim in the document are kept."""
    pairs, bad = parse_pairs(reply, "def f():\n    return 1")
    assert (len(pairs), bad) == (accepted, rejected)
    for pair in pairs:
        assert pair.answer.split("\n")[-1].startswith("<ANSWER>: ")

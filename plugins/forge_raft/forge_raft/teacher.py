"""The optional teacher: an OpenAI-compatible model that writes extra questions.

Off by default (``synth.teacher.enabled``). It talks to any endpoint that
speaks the OpenAI chat API (Ollama, llama.cpp's server, vLLM, OpenAI) through
the official ``openai`` client, imported only when the teacher is on. Replies
are cached on disk under ``<cache_dir>/teacher/<unit content hash>/<prompt
hash>.json``, so a rerun asks nothing again; failed calls are retried with
exponential backoff. A pair is kept only when it has the RAFT format and every
quote is verbatim in the unit's document; the others are counted as rejected.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core.config import TeacherSettings
from forge_core.contracts import CodeUnit, Example
from forge_core.files import write_text_atomic
from forge_raft.answers import check_answer, format_answer, load_templates
from forge_raft.documents import Document
from forge_raft.questions import Grounded, unit_facts

if TYPE_CHECKING:
    from openai import OpenAI

    from forge_raft.synthesis import ExampleMaker

__all__ = ["TEACHER_TYPE", "Teacher", "TeacherError", "TeacherPair", "teacher_examples"]

#: The question type of the teacher's examples.
TEACHER_TYPE = "teacher"
PAIR_START = re.compile(r"^<QUESTION>:[ \t]*", re.MULTILINE)
REASONING = re.compile(r"^<REASONING>:[ \t]*", re.MULTILINE)
#: HTTP statuses worth asking again.
RETRY_STATUSES = frozenset({408, 409, 429})


class TeacherError(RuntimeError):
    """The teacher endpoint failed for good; the message names it and says why."""


@dataclass(frozen=True)
class TeacherPair:
    """One accepted question and its RAFT answer."""

    question: str
    answer: str


def parse_pairs(reply: str, document: str) -> tuple[list[TeacherPair], int]:
    """The well-formed, verbatim pairs of a reply, and how many were rejected."""
    blocks = PAIR_START.split(reply)[1:]
    if not blocks:
        return [], 1
    pairs, rejected = [], 0
    for block in blocks:
        question, _, rest = block.partition("\n")
        reasoning = REASONING.search(rest)
        if not question.strip() or reasoning is None:
            rejected += 1
            continue
        answer = rest[reasoning.end() :].strip()
        if check_answer(answer, [document]) is not None:
            rejected += 1
            continue
        reasoning_text, _, final = answer.partition("\n<ANSWER>: ")
        pairs.append(TeacherPair(question.strip(), format_answer(reasoning_text, final.strip())))
    return pairs, rejected


class Teacher:
    """Asks the configured endpoint for question-answer pairs about one unit at a time."""

    def __init__(
        self,
        settings: TeacherSettings,
        cache_dir: Path | None,
        *,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.cache_dir = cache_dir / "teacher" if cache_dir is not None else None
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.stats: Counter[str] = Counter()
        self._client: OpenAI | None = None

    def client(self) -> OpenAI:
        """The OpenAI client for the endpoint (made on first use; retries are ours)."""
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.settings.base_url,
                api_key=os.environ.get(self.settings.api_key_env) or "none",
                timeout=self.settings.timeout_seconds,
                max_retries=0,
            )
        return self._client

    def messages(self, unit: CodeUnit, document: Document) -> list[dict[str, str]]:
        """The chat messages asking about ``unit``."""
        templates = load_templates()
        facts = {
            **unit_facts(unit),
            "document": document.render(),
            "count": self.settings.questions_per_unit,
        }
        return [
            {"role": "system", "content": templates.teacher_system},
            {"role": "user", "content": templates.teacher_user.render(**facts).strip()},
        ]

    def _cache_path(self, unit: CodeUnit, messages: list[dict[str, str]]) -> Path | None:
        if self.cache_dir is None:
            return None
        payload = json.dumps({"model": self.settings.model, "messages": messages}, sort_keys=True)
        prompt_hash = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        return self.cache_dir / unit.content_hash / f"{prompt_hash}.json"

    def reply(self, unit: CodeUnit, messages: list[dict[str, str]]) -> str:
        """The model's reply to ``messages``: from the cache, else from the endpoint."""
        path = self._cache_path(unit, messages)
        if path is not None and path.is_file():
            try:
                cached: dict[str, Any] = json.loads(path.read_text("utf-8"))
                self.stats["teacher.cache_hits"] += 1
                return str(cached["reply"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is asked again
        text = self._ask(messages)
        if path is not None:
            write_text_atomic(path, json.dumps({"model": self.settings.model, "reply": text}))
        return text

    def _ask(self, messages: list[dict[str, str]]) -> str:
        """One chat completion, retried with exponential backoff on transient errors."""
        import openai

        where = f"teacher {self.settings.model!r} at {self.settings.base_url}"
        for attempt in range(self.settings.max_retries + 1):
            self.stats["teacher.requests"] += 1
            try:
                response = self.client().chat.completions.create(
                    model=self.settings.model,
                    messages=messages,  # type: ignore[arg-type]
                )
                return response.choices[0].message.content or ""
            except openai.APIStatusError as exc:
                transient = exc.status_code in RETRY_STATUSES or exc.status_code >= 500
                if not transient:
                    raise TeacherError(f"{where}: HTTP {exc.status_code}: {exc.message}") from exc
                error: Exception = exc
            except openai.APIConnectionError as exc:
                error = exc
            if attempt < self.settings.max_retries:
                self.stats["teacher.retries"] += 1
                self.sleep(self.backoff_seconds * 2**attempt)
        raise TeacherError(
            f"{where} failed after {self.settings.max_retries + 1} attempts: {error}; "
            "check synth.teacher.base_url and that the server is running"
        )

    def pairs(self, unit: CodeUnit, document: Document) -> list[TeacherPair]:
        """Accepted pairs about ``unit`` (rejections are counted in ``stats``)."""
        if self.settings.questions_per_unit <= 0:
            return []
        reply = self.reply(unit, self.messages(unit, document))
        accepted, rejected = parse_pairs(reply, document.text)
        self.stats["teacher.rejected"] += rejected
        self.stats["teacher.accepted"] += len(accepted)
        return accepted[: self.settings.questions_per_unit]


def teacher_examples(
    units: list[CodeUnit],
    settings: TeacherSettings,
    cache_dir: Path | None,
    maker: ExampleMaker,
    seed: int,
) -> list[Example]:
    """Examples from the teacher's pairs, assembled like the grounded ones."""
    teacher = Teacher(settings, cache_dir)
    examples = []
    for unit in units:
        document = maker.documents.of(unit)
        for index, pair in enumerate(teacher.pairs(unit, document)):
            rng = random.Random(f"{seed}\0{unit.id}\0{TEACHER_TYPE}\0{index}")
            grounded = Grounded(unit_facts(unit), document)
            answer = partial(str, pair.answer)
            example = maker.make(
                unit, TEACHER_TYPE, str(index), rng, grounded, pair.question, answer
            )
            if example is not None:
                examples.append(example)
    maker.stats.update(teacher.stats)
    return examples

"""The RAFT answer format and the wording templates.

An answer is a chain of reasoning that quotes the documents verbatim between
``##begin_quote##`` and ``##end_quote##``, then a last line that starts with
``<ANSWER>: `` and holds the final answer (which may run over several lines,
as code does). The wording lives in ``templates/questions.yaml``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

if TYPE_CHECKING:
    from forge_raft.documents import Document

__all__ = [
    "ANSWER_PREFIX",
    "BEGIN_QUOTE",
    "END_QUOTE",
    "Templates",
    "check_answer",
    "extract_quotes",
    "final_answer",
    "format_answer",
    "load_templates",
    "quote",
]

BEGIN_QUOTE = "##begin_quote##"
END_QUOTE = "##end_quote##"
ANSWER_PREFIX = "<ANSWER>: "
QUOTE = re.compile(re.escape(BEGIN_QUOTE) + r"(.*?)" + re.escape(END_QUOTE), re.DOTALL)
ANSWER_LINE = re.compile(r"(?:^|\n)" + re.escape(ANSWER_PREFIX))


def quote(text: str) -> str:
    """Wrap verbatim text in the quote markers."""
    return f"{BEGIN_QUOTE}{text}{END_QUOTE}"


def extract_quotes(answer: str) -> list[str]:
    """Every quoted span of an answer, in order."""
    return QUOTE.findall(answer)


def format_answer(reasoning: str, final: str) -> str:
    """The assistant turn: reasoning, then the ``<ANSWER>:`` line."""
    return f"{reasoning.strip()}\n{ANSWER_PREFIX}{final}"


def final_answer(answer: str) -> str | None:
    """The text after the first line that starts with ``<ANSWER>: ``; None without one."""
    match = ANSWER_LINE.search(answer)
    return answer[match.end() :] if match else None


def check_answer(
    answer: str,
    sources: Iterable[str],
    *,
    need_quote: bool = True,
    originals: Iterable[str] | None = None,
) -> str | None:
    """The reason an answer breaks the format, or None when it is well formed.

    Every quote must be a substring of one of ``sources`` (the documents the
    answer may quote) and, when ``originals`` are given, of one of them too
    (the mined text of those units); markers must pair up; the final answer
    must be there.
    """
    texts = list(sources)
    raw = list(originals) if originals is not None else None
    match = ANSWER_LINE.search(answer)
    if match is None or not answer[match.end() :].strip():
        return "no final answer"
    reasoning = answer[: match.start()]
    quotes = extract_quotes(reasoning)
    if reasoning.count(BEGIN_QUOTE) != len(quotes) or reasoning.count(END_QUOTE) != len(quotes):
        return "unbalanced quote markers"
    if need_quote and not quotes:
        return "no quote"
    for text in quotes:
        if not text.strip() or not any(text in source for source in texts):
            return "quote not verbatim"
        if raw is not None and not any(text in source for source in raw):
            return "quote not verbatim in the mined code"
    return None


def _english(items: Iterable[Any]) -> str:
    words = [str(item) for item in items]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _code(text: Any) -> str:
    return f"`{text}`"


@dataclass(frozen=True)
class Templates:
    """The parsed wording file, with one compiled Jinja template per phrasing."""

    system: str
    user: jinja2.Template
    types: dict[str, dict[str, list[jinja2.Template]]]
    absent_reasoning: list[jinja2.Template]
    absent_answer: jinja2.Template
    teacher_system: str
    teacher_user: jinja2.Template

    def render(self, question_type: str, part: str, rng: random.Random, **facts: Any) -> str:
        """One phrasing of ``part`` (question, reasoning, answer), chosen with ``rng``."""
        return rng.choice(self.types[question_type][part]).render(**facts).strip()

    def phrasings(self, question_type: str, part: str) -> int:
        """How many phrasings ``part`` of a type has."""
        return len(self.types[question_type][part])

    def user_turn(self, documents: Sequence[Document], question: str) -> str:
        """The user's message: the context documents, then the question."""
        return self.user.render(
            documents="\n\n".join(d.render() for d in documents), question=question
        )


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    environment.filters["code"] = _code
    environment.filters["english"] = _english
    environment.globals["q"] = quote
    return environment


@cache
def load_templates() -> Templates:
    """Read ``templates/questions.yaml`` and ``templates/teacher.yaml`` from the package."""
    folder = resources.files("forge_raft").joinpath("templates")
    data = yaml.safe_load(folder.joinpath("questions.yaml").read_text("utf-8"))
    teacher = yaml.safe_load(folder.joinpath("teacher.yaml").read_text("utf-8"))
    environment = _environment()
    macros = data.get("macros", "")
    macro_names = re.findall(r"macro\s+(\w+)", macros)

    def compile_one(text: str) -> jinja2.Template:
        uses_macros = any(name in text for name in macro_names)  # defining them costs per render
        return environment.from_string(f"{macros}{text}" if uses_macros else text)

    types = {
        name: {part: [compile_one(text) for text in texts] for part, texts in parts.items()}
        for name, parts in data["types"].items()
    }
    return Templates(
        system=data["system"].strip(),
        user=compile_one(data["user"]),
        types=types,
        absent_reasoning=[compile_one(text) for text in data["absent"]["reasoning"]],
        absent_answer=compile_one(data["absent"]["answer"]),
        teacher_system=teacher["system"].strip(),
        teacher_user=compile_one(teacher["user"]),
    )

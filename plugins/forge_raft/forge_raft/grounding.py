"""Put a question back in the setting a RAFT-trained model learned to answer in.

Training examples show the model a system turn and a user turn made of context
documents (the oracle unit and its distractors, ``<DOCUMENT …>`` blocks) followed by
the question. A question asked without documents is outside what the model saw, so
:class:`Grounding` retrieves documents from the repository's mined units the way a
reader would look them up:

1. units the question names (``Forge.run_all``, ```run_all```, ``parseHeader``):
   those in a file the question names (```tools/tool6.py```, or ``tool6.py`` when
   only one file ends so) first, then qualified-name matches before bare-name ones,
   then by BM25 score for the question (file order last), so that of many units
   called ``main`` the one asked about leads;
2. then the best BM25 matches over the same words synthesis indexes (names, path,
   comments and code, identifiers split into words).

Documents are rendered exactly as synthesis renders them, and the least relevant
(the last) are left out until the messages fit the model's training length; the
best one always stays.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from forge_core.contracts import CodeUnit
from forge_raft.answers import Templates, load_templates
from forge_raft.code import displayed_units
from forge_raft.documents import Document, Documents
from forge_raft.retrieval import BM25Index, tokenize, unit_tokens

__all__ = ["GroundedQuestion", "Grounding", "named_identifiers", "path_words"]

#: Dotted words of a question; which of them are identifiers is decided below.
DOTTED_WORD = re.compile(r"`([^`\n]+)`|([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(\()?")
#: A capital after the first character: camelCase or PascalCase joined words.
INNER_CAPITAL = re.compile(r".[A-Z]")
#: Words of a question that may be a file path: runs without spaces, quotes or brackets.
PATH_WORD = re.compile(r"[^\s`'\"()\[\]{}<>,;!?]+")
#: A ``:12`` or ``:12-18`` line reference after a path.
LINE_SUFFIX = re.compile(r":\d+(?:-\d+)?$")


def named_identifiers(question: str) -> list[str]:
    """Words of ``question`` written as code, in order, each once.

    A word counts when it is in backticks, is followed by ``(``, or could not be a
    plain English word: it holds ``_``, ``.`` or ``$``, or a capital after its first
    letter. ``run`` in "how do I run it" is English; ``run_all``, ``Forge.run_all``,
    ``parseHeader`` and ```run``` are code.
    """
    found: dict[str, None] = {}
    for match in DOTTED_WORD.finditer(question):
        quoted, word, call = match.groups()
        if quoted is not None:
            name = quoted.strip().removesuffix("()")
        elif call or any(c in word for c in "_.$") or INNER_CAPITAL.search(word):
            name = word
        else:
            continue
        if name:
            found.setdefault(name, None)
    return list(found)


def path_words(question: str) -> list[str]:
    """Words of ``question`` that could be file paths (they hold ``/`` or ``.``), in order.

    A backticked span counts whole; other words lose a sentence's closing ``.`` or
    ``:``, a ``:12-18`` line reference and a leading ``./``.
    """
    words = re.findall(r"`([^`\n]+)`", question) + PATH_WORD.findall(question)
    found: dict[str, None] = {}
    for word in words:
        word = LINE_SUFFIX.sub("", word.strip()).rstrip(".:").removeprefix("./")
        if "/" in word or "." in word:
            found.setdefault(word, None)
    return list(found)


@dataclass(frozen=True)
class GroundedQuestion:
    """The messages to send and the documents they show."""

    messages: list[dict[str, str]]
    documents: list[Document]


class Grounding:
    """Retrieves and renders context documents for questions about one repository."""

    def __init__(
        self,
        units: Sequence[CodeUnit],
        max_document_chars: int,
        templates: Templates | None = None,
    ) -> None:
        self.units = displayed_units(list(units))
        self.templates = templates or load_templates()
        self.documents = Documents(max_document_chars)
        self.index = BM25Index([unit_tokens(unit) for unit in self.units])
        self._qualified: dict[str, list[int]] = defaultdict(list)
        self._plain: dict[str, list[int]] = defaultdict(list)
        #: Every ``/``-boundary ending of a unit's path (``tool6.py``, ``tools/tool6.py``).
        self._path_endings: dict[str, set[str]] = defaultdict(set)
        for position, unit in enumerate(self.units):
            self._qualified[unit.qualified_name].append(position)
            self._plain[unit.name].append(position)
            parts = unit.path.split("/")
            for start in range(len(parts)):
                self._path_endings["/".join(parts[start:])].add(unit.path)

    def named_paths(self, question: str) -> set[str]:
        """Paths of the files ``question`` names: a unit's whole path, or an ending only one has."""
        paths: set[str] = set()
        for word in path_words(question):
            endings = self._path_endings.get(word, set())
            if word in endings:
                paths.add(word)
            elif len(endings) == 1:
                paths |= endings
        return paths

    def named(self, question: str) -> list[int]:
        """Positions of the units ``question`` names, best first.

        Units in a file the question names lead, then qualified-name matches before
        bare-name ones, then the better BM25 score for the question, then file order.
        """
        names = named_identifiers(question)
        found = {
            p
            for name in names
            for p in (*self._qualified.get(name, ()), *self._plain.get(name, ()))
        }
        if not found:
            return []
        paths = self.named_paths(question)
        scores = self.index.scores(tokenize(question))

        def rank(position: int) -> tuple[bool, bool, float, int]:
            unit = self.units[position]
            return (
                unit.path not in paths,
                unit.qualified_name not in names,
                -float(scores[position]),
                position,
            )

        return sorted(found, key=rank)

    def retrieve(self, question: str, count: int) -> list[int]:
        """Positions of the ``count`` units to show for ``question``, best first."""
        chosen = self.named(question)[:count]
        if len(chosen) < count:
            chosen += self.index.top(tokenize(question), count - len(chosen), set(chosen))
        return chosen

    def messages(self, documents: Sequence[Document], question: str) -> list[dict[str, str]]:
        """The system and user turns of a training example, for these documents."""
        return [
            {"role": "system", "content": self.templates.system},
            {"role": "user", "content": self.templates.user_turn(documents, question)},
        ]

    def ground(
        self,
        question: str,
        count: int,
        count_tokens: Callable[[str], int] | None = None,
        max_tokens: int | None = None,
    ) -> GroundedQuestion:
        """The messages for ``question`` with up to ``count`` documents.

        With a token counter and ``max_tokens`` (the room the messages may take), the
        least relevant documents are left out until the messages fit; the best one is
        always kept, even alone over the limit.
        """
        question = question.strip()
        documents = [self.documents.of(self.units[i]) for i in self.retrieve(question, count)]
        messages = self.messages(documents, question)
        if count_tokens is not None and max_tokens is not None:
            # ``documents`` is best first: leaving out the last drops the least relevant.
            while len(documents) > 1 and self._tokens(messages, count_tokens) > max_tokens:
                documents.pop()
                messages = self.messages(documents, question)
        return GroundedQuestion(messages, documents)

    @staticmethod
    def _tokens(messages: list[dict[str, str]], count_tokens: Callable[[str], int]) -> int:
        return sum(count_tokens(message["content"]) for message in messages)

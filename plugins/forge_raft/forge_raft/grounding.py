"""Put a question back in the setting a RAFT-trained model learned to answer in.

Training examples show the model a system turn and a user turn made of context
documents (the oracle unit and its distractors, ``<DOCUMENT …>`` blocks) followed by
the question. A question asked without documents is outside what the model saw, so
:class:`Grounding` retrieves documents from the repository's mined units the way a
reader would look them up:

1. units the question names (``Forge.run_all``, ```run_all```, ``parseHeader``),
   qualified names before bare names, in the order they are named;
2. then the best BM25 matches over the same words synthesis indexes (names, path,
   comments and code, identifiers split into words).

Documents are rendered exactly as synthesis renders them, and the last ones are left
out until the messages fit the model's training length (one always stays).
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

__all__ = ["GroundedQuestion", "Grounding", "named_identifiers"]

#: Dotted words of a question; which of them are identifiers is decided below.
DOTTED_WORD = re.compile(r"`([^`\n]+)`|([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(\()?")
#: A capital after the first character: camelCase or PascalCase joined words.
INNER_CAPITAL = re.compile(r".[A-Z]")


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
        for position, unit in enumerate(self.units):
            self._qualified[unit.qualified_name].append(position)
            self._plain[unit.name].append(position)

    def named(self, question: str) -> list[int]:
        """Positions of the units ``question`` names, qualified-name matches first."""
        names = named_identifiers(question)
        found: dict[int, None] = {}
        for table in (self._qualified, self._plain):
            for name in names:
                for position in table.get(name, ()):
                    found.setdefault(position, None)
        return list(found)

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
            while len(documents) > 1 and self._tokens(messages, count_tokens) > max_tokens:
                documents.pop()
                messages = self.messages(documents, question)
        return GroundedQuestion(messages, documents)

    @staticmethod
    def _tokens(messages: list[dict[str, str]], count_tokens: Callable[[str], int]) -> int:
        return sum(count_tokens(message["content"]) for message in messages)

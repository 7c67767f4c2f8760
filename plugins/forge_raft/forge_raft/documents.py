"""Context documents: what the model reads before the question.

Each document is one unit, headed by its path, qualified name and line span (so an
answer that says where the unit is can be read off the context, like every other fact)::

    <DOCUMENT path="pkg/mod.py" name="Stack.push" lines="12-18">
    ...the unit's comments and source...
    </DOCUMENT>

Long units are cut to ``max_document_chars`` at a line boundary, with a marker
line after the cut. Quotes are only ever taken from the visible text.
"""

from __future__ import annotations

from dataclasses import dataclass

from forge_core.contracts import CodeUnit
from forge_raft.code import unit_text

__all__ = ["TRUNCATED", "Document", "Documents"]

TRUNCATED = "[... truncated ...]"


@dataclass(frozen=True)
class Document:
    """One document of a context: the unit it shows and the visible text."""

    unit: CodeUnit
    text: str
    truncated: bool = False

    def render(self) -> str:
        """The document as it appears in the user turn."""
        path = self.unit.path.replace('"', "&quot;")
        name = self.unit.qualified_name.replace('"', "&quot;")
        body = f"{self.text}\n{TRUNCATED}" if self.truncated else self.text
        lines = f"{self.unit.start_line}-{self.unit.end_line}"
        return f'<DOCUMENT path="{path}" name="{name}" lines="{lines}">\n{body}\n</DOCUMENT>'


class Documents:
    """Makes (and remembers) the visible document of each unit."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._cache: dict[str, Document] = {}

    def cut(self, unit: CodeUnit, text: str) -> Document:
        """A document showing ``text`` for ``unit``, cut at a line boundary when too long."""
        if len(text) <= self.max_chars:
            return Document(unit, text)
        head = text[: self.max_chars]
        newline = head.rfind("\n")
        if newline > self.max_chars // 2:
            head = head[:newline]
        return Document(unit, head.rstrip(), truncated=True)

    def of(self, unit: CodeUnit) -> Document:
        """The unit's usual document: its comments and its whole source."""
        found = self._cache.get(unit.id)
        if found is None:
            found = self._cache[unit.id] = self.cut(unit, unit_text(unit))
        return found

"""The question types: what each asks about a unit, and the facts its answer rests on.

Every type is grounded in the code itself, so no teacher model is needed. A
builder looks at one unit and returns a :class:`Grounded` (the template
variables, the oracle document as the context will show it, and any other
documents the answer quotes) or None when the type does not apply to the unit.
Quotes are always cut from the visible text of a document, so they are
verbatim by construction; :func:`forge_raft.answers.check_answer` checks again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forge_core.contracts import CodeUnit, UnitKind
from forge_raft.calls import CallGraph, CallSite
from forge_raft.code import (
    clean_documentation,
    declaration_line,
    first_paragraph,
    locate_lines,
    source_without_docstring,
    stub,
    summary,
)
from forge_raft.documents import Document, Documents
from forge_raft.signatures import parse_signature

__all__ = ["BUILDERS", "QUESTION_TYPES", "Grounded", "QuestionContext", "unit_facts"]

#: Callers shown (and named) by one ``callers`` example.
MAX_CALLERS = 3
#: Call lines quoted by one ``calls`` example.
MAX_CALL_QUOTES = 4
LANGUAGE_LABELS = {"python": "Python", "javascript": "JavaScript", "go": "Go"}
CALLABLE = (UnitKind.FUNCTION, UnitKind.METHOD)
#: Parameters Python binds by itself.
BOUND_NAMES = frozenset({"self", "cls"})


@dataclass
class QuestionContext:
    """What builders share: the call graph, the documents, the mined units and the RNG."""

    graph: CallGraph
    documents: Documents
    rng: random.Random
    originals: dict[str, CodeUnit] = field(default_factory=dict)

    def quotable(self, unit: CodeUnit, text: str | None) -> str | None:
        """``text``, or its first line, as long as the mined unit has it verbatim.

        Documents show code re-indented, so a span of several lines of a method
        may differ from the mined ``source`` in its indentation; quotes are
        kept verbatim in both (what validation's grounding check asks).
        """
        if not text:
            return None
        original = self.originals.get(unit.id, unit)
        raw = (original.source, original.docstring or "")
        first = text.split("\n", 1)[0].strip()
        for candidate in (text, first):
            if candidate and any(candidate in part for part in raw):
                return candidate
        return None


@dataclass
class Grounded:
    """What one question type found in one unit."""

    facts: dict[str, Any]
    oracle: Document
    support: list[Document] = field(default_factory=list)
    avoid: set[str] = field(default_factory=set)


def unit_facts(unit: CodeUnit) -> dict[str, Any]:
    """The template variables every question type has."""
    return {
        "name": unit.name,
        "qualified_name": unit.qualified_name,
        "path": unit.path,
        "kind": unit.kind.value,
        "language": unit.language,
        "language_label": LANGUAGE_LABELS.get(unit.language, unit.language.title()),
        "start_line": unit.start_line,
        "end_line": unit.end_line,
        "parent": unit.parent,
    }


def _declaration(unit: CodeUnit, text: str) -> str | None:
    """A verbatim line of ``text`` that declares the unit."""
    for candidate in (declaration_line(unit), unit.signature.split("\n", 1)[0].strip()):
        if candidate and candidate in text:
            return candidate
    return None


def _doc_quote(unit: CodeUnit, text: str) -> str | None:
    """The first paragraph of the unit's documentation, as written in ``text``."""
    if not unit.docstring:
        return None
    start = 0
    if unit.language == "python":  # the docstring follows the header
        header = text.find(unit.signature)
        start = header + len(unit.signature) if header >= 0 else 0
    return locate_lines(text, first_paragraph(clean_documentation(unit.docstring)), start)


def purpose(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """What a documented unit does: its documentation's first paragraph."""
    text = summary(clean_documentation(unit.docstring or ""))
    document = context.documents.of(unit)
    doc_quote = context.quotable(unit, _doc_quote(unit, document.text))
    declaration = context.quotable(unit, _declaration(unit, document.text))
    if not text or doc_quote is None or declaration is None:
        return None
    facts = {"summary": text, "doc_quote": doc_quote, "declaration": declaration}
    return Grounded({**unit_facts(unit), **facts}, document)


def parameters(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """A function's parameters and declared result, from its signature.

    Skipped when there is nothing to tell: no parameter but ``self``/``cls``
    and no declared result.
    """
    signature = parse_signature(unit)
    document = context.documents.of(unit)
    if signature is None:
        return None
    if not signature.returns and all(p.name in BOUND_NAMES for p in signature.parameters):
        return None
    declaration = unit.signature if unit.signature in document.text else None
    declaration = context.quotable(unit, declaration or _declaration(unit, document.text))
    if declaration is None:
        return None
    facts = {
        "parameters": list(signature.parameters),
        "returns": signature.returns,
        "declaration": declaration,
    }
    return Grounded({**unit_facts(unit), **facts}, document)


def location(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """Where a unit is defined: its path, lines and enclosing unit."""
    document = context.documents.of(unit)
    declaration = context.quotable(unit, _declaration(unit, document.text))
    if declaration is None:
        return None
    return Grounded({**unit_facts(unit), "declaration": declaration}, document)


def calls(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """The repository code a unit calls (only when its whole code is visible)."""
    document = context.documents.of(unit)
    callees = context.graph.callees(unit)
    if document.truncated or not callees:
        return None
    quoted = [context.quotable(unit, sites[0].lines) for sites in callees.values()]
    lines = list(dict.fromkeys(q for q in quoted if q and q in document.text))[:MAX_CALL_QUOTES]
    if not lines:
        return None
    facts = {"callees": list(callees), "call_lines": lines}
    return Grounded({**unit_facts(unit), **facts}, document)


def _visible_sites(
    unit: CodeUnit, context: QuestionContext
) -> list[tuple[CallSite, str, Document]]:
    """Call sites of the unit that show in the caller's document, with the line to quote."""
    found = []
    for site in context.graph.callers(unit):
        caller = site.caller
        if caller.quality.has_syntax_error or caller.quality.looks_generated:
            continue
        document = context.documents.of(caller)
        line = context.quotable(caller, site.lines)
        if line and line in document.text and site.expression in document.text:
            found.append((site, line, document))
    return sorted(found, key=lambda found: (found[0].caller.id, found[1]))


def callers(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """Which documents call the unit: up to ``MAX_CALLERS`` callers, all shown."""
    by_caller: dict[str, tuple[CallSite, str, Document]] = {}
    for found in _visible_sites(unit, context):
        by_caller.setdefault(found[0].caller.id, found)
    if not by_caller:
        return None
    chosen_ids = sorted(context.rng.sample(sorted(by_caller), min(MAX_CALLERS, len(by_caller))))
    chosen = [by_caller[i] for i in chosen_ids]
    facts = {
        "callers": [{"name": s.caller.qualified_name, "path": s.caller.path} for s, _, _ in chosen],
        "call_lines": [line for _, line, _ in chosen],
    }
    avoid = {site.caller.id for site in context.graph.callers(unit)}
    return Grounded(
        {**unit_facts(unit), **facts},
        context.documents.of(unit),
        support=[document for _, _, document in chosen],
        avoid=avoid,
    )


def usage(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """How the unit is called: one real call site from another unit."""
    sites = _visible_sites(unit, context)
    if not sites:
        return None
    site, line, document = context.rng.choice(sites)
    facts = {
        "caller": site.caller.qualified_name,
        "caller_path": site.caller.path,
        "call": site.expression,
        "call_line": line,
    }
    avoid = {other.caller.id for other in context.graph.callers(unit)}
    return Grounded({**unit_facts(unit), **facts}, context.documents.of(unit), [document], avoid)


def docstring(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """Write a documented unit's documentation; the context shows its code without it."""
    if not unit.docstring or not clean_documentation(unit.docstring):
        return None
    text = source_without_docstring(unit)
    if text is None:
        return None
    document = context.documents.cut(unit, text)
    declaration = context.quotable(unit, _declaration(unit, document.text))
    if declaration is None or unit.docstring in document.text:
        return None
    facts = {"docstring": unit.docstring, "declaration": declaration}
    return Grounded({**unit_facts(unit), **facts}, document)


def implement(unit: CodeUnit, context: QuestionContext) -> Grounded | None:
    """Implement a documented function from its signature and documentation."""
    if unit.kind not in CALLABLE or not unit.docstring:
        return None
    if len(unit.source) > context.documents.max_chars:
        return None  # the answer would be longer than any document we show
    text = stub(unit)
    if text is None:
        return None
    document = context.documents.cut(unit, text)
    doc_quote = context.quotable(unit, _doc_quote(unit, document.text))
    declaration = context.quotable(unit, _declaration(unit, document.text))
    if doc_quote is None or declaration is None or document.truncated:
        return None
    facts = {"source": unit.source, "doc_quote": doc_quote, "declaration": declaration}
    return Grounded({**unit_facts(unit), **facts}, document)


Builder = Callable[[CodeUnit, QuestionContext], "Grounded | None"]

#: Every grounded question type, in the order examples are made.
BUILDERS: dict[str, Builder] = {
    "purpose": purpose,
    "parameters": parameters,
    "location": location,
    "calls": calls,
    "callers": callers,
    "usage": usage,
    "docstring": docstring,
    "implement": implement,
}
QUESTION_TYPES: tuple[str, ...] = tuple(BUILDERS)

"""Who calls whom, by name: the facts behind the ``calls``, ``callers`` and ``usage`` questions.

Units carry the identifiers they refer to (``references``). A call from unit A
to unit B is counted when B's bare name is among A's references *and* A's code
has a call site for it: ``name(`` (``new name(``, ``name[T](``) for functions,
classes and types, or ``x.name(`` for methods. A dotted call reaches a
function only through its module's name (``utils.helper(``, ``geom.Area(``).
Names that are too common to tell apart (``get``, ``append``, ``String``,
dunders, names defined by many units) are never used for call questions: a
name-based answer about them would often be wrong.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePosixPath

from forge_core.contracts import CodeUnit, UnitKind
from forge_raft.code import python_docstring_span
from forge_raft.signatures import matching_close

__all__ = ["CallGraph", "CallSite"]

#: A name defined by more units than this is ambiguous.
MAX_DEFINITIONS = 3
MAX_CALL_CHARS = 300
COMMENT_LINE = re.compile(r"^[ \t]*(#|//|/\*|\*).*$", re.MULTILINE)
#: String literals of Python, JavaScript and Go (one-line ones end at the line).
STRING = re.compile(
    r"""(?<![\w$])[rRbBuUfF]{0,2}(?P<body>\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)"""
)
DEFINITION_BEFORE = re.compile(r"(\bdef|\bfunction\*?|\bfunc|\bclass)\s*$")
MODIFIERS_ONLY = re.compile(r"^\s*((async|static|get|set|public|private|\*)\s*)*$")


@dataclass(frozen=True)
class CallSite:
    """One call of ``name`` inside ``caller``'s source."""

    caller: CodeUnit
    name: str
    qualifier: str | None
    expression: str
    lines: str

    @property
    def dotted(self) -> bool:
        """The call goes through an object or module (``x.name(``)."""
        return self.qualifier is not None


#: Any call-shaped name: ``name(``, ``name[T](``; which names matter is decided after.
CALL = re.compile(r"(?<![\w$])([A-Za-z_$][\w$]*)\s*(?:\[[^\[\]\n]*\]\s*)?\(")


def _blank(chars: list[str], start: int, end: int) -> None:
    for index in range(start, end):
        if chars[index] != "\n":
            chars[index] = " "


def code_view(unit: CodeUnit) -> str:
    """The source with its header, comment lines and strings blanked (offsets kept).

    What is left is code, so a name in a message or a comment is not a call.
    """
    text = unit.source
    header = text.find(unit.signature)
    spans = [(header, header + len(unit.signature))] if header >= 0 else []
    docstring = python_docstring_span(unit)
    if docstring is not None:
        spans.append(docstring)
    spans.extend(m.span() for m in COMMENT_LINE.finditer(text))
    chars = list(text)
    for start, end in spans:
        _blank(chars, start, end)
    for match in STRING.finditer("".join(chars)):
        body = match.start("body")
        quote = 3 if match.group("body")[:3] in ('"""', "'''") else 1
        _blank(chars, body + quote, match.end() - quote)  # quotes kept: `f("")` is still a call
    return "".join(chars)


def find_calls(unit: CodeUnit, names: set[str], view: str | None = None) -> list[CallSite]:
    """Every call site of one of ``names`` in ``unit`` (method definitions excluded)."""
    view = code_view(unit) if view is None else view
    sites = []
    for match in CALL.finditer(view):
        name = match.group(1)
        if name not in names:
            continue
        start, opening = match.start(), match.end() - 1
        line_start = view.rfind("\n", 0, start) + 1
        before = view[line_start:start]
        if DEFINITION_BEFORE.search(before):
            continue
        closing = matching_close(unit.source, opening)
        if closing is None:
            continue
        if MODIFIERS_ONLY.match(before) and re.match(r"\s*\{", unit.source[closing + 1 :]):
            continue  # `push(item) {`: a method defined in a class body
        chain = re.search(r"(?:new\s+)?[\w$.]*$", unit.source[line_start:start])
        expression_start = line_start + chain.start() if chain else start
        expression = unit.source[expression_start : closing + 1]
        if len(expression) > MAX_CALL_CHARS:
            continue
        dotted = re.search(r"([\w$]*)\s*\.\s*$", before)
        line_end = unit.source.find("\n", closing)
        lines = unit.source[line_start : line_end if line_end >= 0 else len(unit.source)]
        sites.append(
            CallSite(
                unit, name, dotted.group(1) if dotted else None, expression.strip(), lines.strip()
            )
        )
    return sites


def module_name(unit: CodeUnit) -> str:
    """The name other files call the unit's module or package by."""
    path = PurePosixPath(unit.path)
    if unit.language == "go" or path.stem in ("__init__", "index"):
        return path.parent.name
    return path.stem


def reaches(site: CallSite, target: CodeUnit) -> bool:
    """Whether a call site by name can be a call of ``target`` (same language only)."""
    if site.caller.language != target.language:
        return False
    if target.kind == UnitKind.METHOD:
        return site.dotted
    return not site.dotted or site.qualifier == module_name(target)


def contains(outer: CodeUnit, inner: CodeUnit) -> bool:
    """``outer``'s span holds ``inner``'s (same file; a unit holds itself)."""
    return (
        outer.path == inner.path
        and outer.start_byte <= inner.start_byte
        and inner.end_byte <= outer.end_byte
    )


class CallGraph:
    """Calls between the units of one repository, found by name (see the module docstring)."""

    def __init__(self, units: list[CodeUnit], common_names: frozenset[str]) -> None:
        self.by_name: dict[str, list[CodeUnit]] = defaultdict(list)
        for unit in units:
            self.by_name[unit.name].append(unit)
        self.common_names = common_names
        self._sites: dict[str, list[CallSite]] = defaultdict(list)  # by callee name
        self._calls: dict[str, list[CallSite]] = {}  # by caller id
        self._callers: dict[str, list[CallSite]] = {}
        for unit in units:
            names = {r for r in unit.references if self.distinctive(r)}
            found = find_calls(unit, names) if names else []
            self._calls[unit.id] = found
            for site in found:
                self._sites[site.name].append(site)

    def distinctive(self, name: str) -> bool:
        """A name that call questions may rely on."""
        definitions = self.by_name.get(name, [])
        return (
            0 < len(definitions) <= MAX_DEFINITIONS
            and len(name) > 2
            and not (name.startswith("__") and name.endswith("__"))
            and name not in self.common_names
        )

    def callees(self, unit: CodeUnit) -> dict[str, list[CallSite]]:
        """Names of other units that ``unit`` calls, in order, with their call sites."""
        found: dict[str, list[CallSite]] = {}
        for site in self._calls.get(unit.id, []):
            targets = [t for t in self.by_name[site.name] if t.id != unit.id]
            if any(reaches(site, target) for target in targets):
                found.setdefault(site.name, []).append(site)
        return found

    def callers(self, unit: CodeUnit) -> list[CallSite]:
        """Call sites of ``unit`` in other units, only in the innermost calling unit."""
        cached = self._callers.get(unit.id)
        if cached is not None:
            return cached
        sites = []
        if self.distinctive(unit.name):
            sites = [
                site
                for site in self._sites.get(unit.name, [])
                if reaches(site, unit)
                and not contains(site.caller, unit)
                and not contains(unit, site.caller)
            ]
        by_path: dict[str, dict[str, CodeUnit]] = defaultdict(dict)
        for site in sites:
            by_path[site.caller.path][site.caller.id] = site.caller
        outer = {
            a.id
            for callers in by_path.values()
            for a in callers.values()
            for b in callers.values()
            if a.id != b.id and contains(a, b)
        }
        found = [site for site in sites if site.caller.id not in outer]
        self._callers[unit.id] = found
        return found

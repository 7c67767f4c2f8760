"""The stdlib ``ast`` module as the reference the parser is measured against.

Used by the acceptance test and by ``bench/mining_python_stdlib.py``, so both compare in
exactly the same way. The reference follows the parser's conventions: a unit is every
``def``/``async def``/``class`` reached from the module or a class body through statements
(``if``, ``try``, ``with``, ``for``, ``while``, ``match`` included), never one inside a
function; it starts at its first decorator (``min(decorator.lineno)``, else ``lineno``) and
ends at ``end_lineno``; its docstring is ``ast.get_docstring(node)``.
"""

from __future__ import annotations

import ast
import sysconfig
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from forge_core.contracts import ParseResult, UnitKind

__all__ = ["Comparison", "UnitSpan", "ast_units", "compare", "parser_units", "stdlib_files"]

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
#: Nodes whose children may be statements holding definitions.
_CONTAINERS = (ast.stmt, ast.excepthandler, ast.match_case)


@dataclass(frozen=True)
class UnitSpan:
    """The facts of a unit that the parser and ``ast`` must agree on."""

    kind: UnitKind
    qualified_name: str
    start_line: int
    end_line: int
    docstring: str | None


def ast_units(source: bytes) -> list[UnitSpan]:
    """The units ``ast`` sees in ``source``, in document order (raises if it cannot parse)."""
    units: list[UnitSpan] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _DEFINITIONS):
                is_class = isinstance(child, ast.ClassDef)
                kind = (
                    UnitKind.CLASS if is_class else UnitKind.METHOD if scope else UnitKind.FUNCTION
                )
                start = min((d.lineno for d in child.decorator_list), default=child.lineno)
                end = child.end_lineno if child.end_lineno is not None else child.lineno
                name = ".".join((*scope, child.name))
                units.append(UnitSpan(kind, name, start, end, ast.get_docstring(child)))
                if is_class:
                    visit(child, (*scope, child.name))
            elif isinstance(child, _CONTAINERS):
                visit(child, scope)

    visit(ast.parse(source), ())
    return units


def parser_units(result: ParseResult) -> list[UnitSpan]:
    """The same facts, read from the parser's result."""
    return [
        UnitSpan(u.kind, u.qualified_name, u.start_line, u.end_line, u.docstring)
        for u in result.units
    ]


@dataclass
class Comparison:
    """How the parser's units agree with ``ast``'s, accumulated over files."""

    expected: int = 0
    found: int = 0
    matched: int = 0
    span_mismatches: int = 0
    docstring_mismatches: int = 0
    missing: int = 0
    extra: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """Share of ``ast``'s units the parser found exactly."""
        return self.matched / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        """Share of the parser's units that ``ast`` has exactly."""
        return self.matched / self.found if self.found else 1.0

    def note(self, label: str, what: str, limit: int = 50) -> None:
        """Keep a few mismatch descriptions for the report."""
        if len(self.examples) < limit:
            self.examples.append(f"{label}: {what}")


def _by_name(units: Iterable[UnitSpan]) -> dict[tuple[UnitKind, str], list[UnitSpan]]:
    groups: dict[tuple[UnitKind, str], list[UnitSpan]] = defaultdict(list)
    for unit in units:
        groups[(unit.kind, unit.qualified_name)].append(unit)
    return groups


def compare(
    expected: list[UnitSpan], found: list[UnitSpan], label: str, into: Comparison
) -> Comparison:
    """Pair units by kind, qualified name and occurrence; count exact matches and why not."""
    into.expected += len(expected)
    into.found += len(found)
    found_groups = _by_name(found)
    for key, wanted in _by_name(expected).items():
        got = found_groups.pop(key, [])
        for want, have in zip(wanted, got, strict=False):
            if want == have:
                into.matched += 1
                continue
            if (want.start_line, want.end_line) != (have.start_line, have.end_line):
                into.span_mismatches += 1
                into.note(label, f"span {want.qualified_name} ast={want} parser={have}")
            if want.docstring != have.docstring:
                into.docstring_mismatches += 1
                into.note(label, f"docstring {want.qualified_name} ast={want} parser={have}")
        for want in wanted[len(got) :]:
            into.missing += 1
            into.note(label, f"missing {want}")
        for have in got[len(wanted) :]:
            into.extra += 1
            into.note(label, f"extra {have}")
    for leftover in found_groups.values():
        for have in leftover:
            into.extra += 1
            into.note(label, f"extra {have}")
    return into


def stdlib_files() -> list[Path]:
    """Every ``.py`` file of the running interpreter's stdlib, sorted (third-party excluded)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skipped = {"site-packages", "dist-packages", "__pycache__"}
    return sorted(
        path
        for path in root.rglob("*.py")
        if path.is_file() and not skipped.intersection(path.relative_to(root).parts)
    )

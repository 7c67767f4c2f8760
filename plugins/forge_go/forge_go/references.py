"""A Go file's imports and the names each unit refers to."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from operator import attrgetter

from tree_sitter import Language, Node, Query, QueryCursor

from forge_core.codeinfo import node_text, walk
from forge_go.grammar import FIELD, KIND

#: A major-version path element (``.../v2``), which is not the package name.
MAJOR_VERSION = re.compile(r"v[0-9]+")


@dataclass(frozen=True)
class Import:
    """One import spec: the path and the name the file uses the package by (if any)."""

    path: str
    name: str | None


@dataclass(frozen=True)
class FileImports:
    """Every import spec of one file, in order."""

    items: tuple[Import, ...] = ()

    @cached_property
    def paths(self) -> list[str]:
        """The distinct import paths, in order."""
        return list(dict.fromkeys(item.path for item in self.items))

    @cached_property
    def package_names(self) -> frozenset[str]:
        """The names the file refers to imported packages by."""
        return frozenset(item.name for item in self.items if item.name)

    @cached_property
    def references(self) -> list[str]:
        """Each import's path, then its package name, distinct, in import order."""
        refs = (ref for item in self.items for ref in (item.path, item.name) if ref)
        return list(dict.fromkeys(refs))


def read_imports(top_level: Iterable[Node], source: bytes) -> FileImports:
    """The import specs found in the file's top-level ``import`` declarations."""
    items: list[Import] = []
    for declaration in top_level:
        if declaration.type != "import_declaration":
            continue
        for spec in walk(declaration):
            if spec.type != "import_spec":
                continue
            path_node = spec.child_by_field_name("path")
            path = node_text(path_node, source)[1:-1] if path_node is not None else ""
            if not path:
                continue
            name_node = spec.child_by_field_name("name")
            if name_node is None:
                name: str | None = assumed_package_name(path) or None
            elif name_node.type == "package_identifier":
                name = node_text(name_node, source)
            else:  # `_` (side effects only) and `.` (names merged into the file's scope)
                name = None
            items.append(Import(path, name))
    return FileImports(tuple(items))


def assumed_package_name(import_path: str) -> str:
    """The name an unaliased import is used by, guessed from its path as goimports does."""
    parts = import_path.split("/")
    base = parts[-1]
    if len(parts) > 1 and MAJOR_VERSION.fullmatch(base):
        base = parts[-2]
    base = base.removeprefix("go-")
    end = next((i for i, ch in enumerate(base) if not (ch.isalnum() or ch == "_")), len(base))
    return base[:end]


_CALL, _SELECTOR = KIND["call_expression"], KIND["selector_expression"]
_QUALIFIED_TYPE, _CONVERSION = KIND["qualified_type"], KIND["type_conversion_expression"]
_IDENTIFIER, _GENERIC, _TYPE_IDENTIFIER = (
    KIND["identifier"],
    KIND["generic_type"],
    KIND["type_identifier"],
)
_FUNCTION, _OPERAND, _FIELD = FIELD["function"], FIELD["operand"], FIELD["field"]
_PACKAGE, _NAME, _TYPE = FIELD["package"], FIELD["name"], FIELD["type"]

_START_BYTE, _END_BYTE = attrgetter("start_byte"), attrgetter("end_byte")

#: The nodes :func:`unit_references` reads names from.
REFERRING_QUERY = """
[(call_expression) (selector_expression) (qualified_type) (type_conversion_expression)] @referring
"""


@cache
def referring_query(language: Language) -> Query:
    """The compiled :data:`REFERRING_QUERY` for the Go grammar."""
    return Query(language, REFERRING_QUERY)


@dataclass(frozen=True)
class ReferringNodes:
    """A file's referring nodes in walk order (depth first), with their start bytes."""

    nodes: list[Node]
    starts: list[int]

    @classmethod
    def of(
        cls, root: Node, language: Language, byte_range: tuple[int, int] | None = None
    ) -> ReferringNodes:
        """Find them with one C-side query instead of a Python walk over every node.

        ``byte_range``: only those that overlap it (the span of the units that need
        them), so the query does not walk the rest of the file.
        """
        cursor = QueryCursor(referring_query(language))
        if byte_range is not None:
            cursor.set_byte_range(*byte_range)
        found = cursor.captures(root).get("referring", [])
        # Captures do not come in walk order: sort by start, the outer of nested nodes first
        # (two sorts, the stable second by start alone, instead of a key tuple per node).
        found.sort(key=_END_BYTE, reverse=True)
        found.sort(key=_START_BYTE)
        return cls(found, list(map(_START_BYTE, found)))

    def within(self, node: Node) -> list[Node]:
        """The referring nodes inside ``node``, in walk order."""
        return self.nodes[
            bisect_left(self.starts, node.start_byte) : bisect_left(self.starts, node.end_byte)
        ]


def unit_references(
    node: Node,
    source: bytes,
    imports: FileImports,
    referring: ReferringNodes | None = None,
    text: str | None = None,
) -> list[str]:
    """What the unit refers to, distinct and in order of appearance, then the file's imports.

    Called names (``foo()``; ``x.Foo()`` gives ``x`` and ``Foo``; a generic call
    ``Map[int](xs)`` gives ``Map``), selected field and method names (``x.y`` gives
    ``y``, and ``x`` too when it names an imported package), qualified types
    (``http.Request`` gives ``http`` and ``Request``), then each import's path and name.
    ``referring`` is the file's referring nodes, found once for all its units; without
    it the unit's nodes are walked. ``text`` is ``source`` decoded when it is ASCII
    (byte offsets are then text offsets: names are sliced, not decoded one by one).
    """
    packages = imports.package_names
    seen: dict[str, None] = {}

    def name(ref: Node) -> str:
        if text is None:
            return node_text(ref, source)
        return text[ref.start_byte : ref.end_byte]

    def add(ref: Node | None) -> None:
        if ref is not None:
            seen.setdefault(name(ref), None)

    candidates = walk(node) if referring is None else referring.within(node)
    for child in candidates:
        kind = child.kind_id
        if kind == _CALL:
            callee = child.child_by_field_id(_FUNCTION)
            callee_kind = callee.kind_id if callee is not None else None
            if callee_kind == _IDENTIFIER:
                add(callee)
            elif callee is not None and callee_kind == _SELECTOR:
                operand = callee.child_by_field_id(_OPERAND)
                if operand is not None and operand.kind_id == _IDENTIFIER:
                    add(operand)
        elif kind == _SELECTOR:
            operand = child.child_by_field_id(_OPERAND)
            if operand is not None and operand.kind_id == _IDENTIFIER and name(operand) in packages:
                add(operand)
            add(child.child_by_field_id(_FIELD))
        elif kind == _QUALIFIED_TYPE:
            add(child.child_by_field_id(_PACKAGE))
            add(child.child_by_field_id(_NAME))
        elif kind == _CONVERSION:
            generic = child.child_by_field_id(_TYPE)
            if generic is not None and generic.kind_id == _GENERIC:
                base = generic.child_by_field_id(_TYPE)
                if base is not None and base.kind_id == _TYPE_IDENTIFIER:
                    add(base)
    for ref in imports.references:
        seen.setdefault(ref, None)
    return list(seen)

"""What a unit refers to: the names it calls and the members it uses."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from tree_sitter import Node

from forge_core.codeinfo import node_text, walk
from forge_javascript.units import ImportSite, module_call

#: Member names worth recording (``obj.name``, ``this.#name``).
MEMBER_NAMES = frozenset({"property_identifier", "private_property_identifier"})
#: JSX elements whose capitalised name is a component reference.
JSX_ELEMENTS = frozenset({"jsx_opening_element", "jsx_self_closing_element"})
#: The only node types that can refer to something (checked first: most nodes are not).
REFERRING = frozenset({"call_expression", "new_expression", "member_expression", *JSX_ELEMENTS})


def distinct(names: Iterable[str]) -> list[str]:
    """The names without repeats, first occurrence first."""
    return list(dict.fromkeys(names))


def _reference_at(node: Node, source: bytes) -> Node | None:
    """The node naming what ``node`` refers to, if it is a call, ``new``, member or JSX tag."""
    kind = node.type
    if kind == "call_expression":
        callee = node.child_by_field_name("function")
        # ``require`` and ``import()`` are imports: their module names are recorded instead.
        if callee is not None and callee.type == "identifier":
            return None if node_text(callee, source) == "require" else callee
    elif kind == "new_expression":
        constructor = node.child_by_field_name("constructor")
        if constructor is not None and constructor.type == "identifier":
            return constructor
    elif kind == "member_expression":
        prop = node.child_by_field_name("property")
        if prop is not None and prop.type in MEMBER_NAMES:
            return prop
    elif kind in JSX_ELEMENTS:
        tag = node.child_by_field_name("name")
        if tag is not None and tag.type == "identifier" and node_text(tag, source)[:1].isupper():
            return tag
    return None


def scan_unit(definition: Node, source: bytes) -> tuple[list[str], list[ImportSite]]:
    """The unit's call and member names in source order, and its ``require`` calls."""
    found: list[tuple[int, str]] = []
    modules: list[ImportSite] = []
    for node in walk(definition):
        if node.type not in REFERRING:
            continue
        target = _reference_at(node, source)
        if target is not None:
            found.append((target.start_byte, node_text(target, source)))
            continue
        module = module_call(node, source)
        if module:
            modules.append(ImportSite((node.start_byte, 0), module))
    found.sort(key=lambda item: item[0])
    return distinct(name for _, name in found), modules


@dataclass(frozen=True)
class FileReferences:
    """A file's names and ``require``/``import()`` calls by position, for every unit at once.

    Built from the captures of one query (see :data:`forge_javascript.parser.FILE_QUERY`)
    instead of a walk per unit; :meth:`scan` gives what :func:`scan_unit` gives. Only
    for trees without errors, where every name has a width and so lies strictly inside
    the spans that hold it.
    """

    starts: list[int]
    names: list[str]
    module_starts: list[int]
    modules: list[ImportSite]

    @classmethod
    def of(cls, captures: dict[str, list[Node]], source: bytes) -> FileReferences:
        """Index the captured names (calls, ``new``, members, components) and module calls."""
        components = captures.get("component", [])
        targets = [
            *captures.get("name", []),
            *(tag for tag in components if node_text(tag, source)[:1].isupper()),
        ]
        # An ASCII file is decoded once; its byte offsets are text offsets.
        text = source.decode("ascii") if source.isascii() else None
        found = []
        for target in targets:
            start, end = target.start_byte, target.end_byte
            found.append((start, node_text(target, source) if text is None else text[start:end]))
        found.sort()
        modules = []
        for call in captures.get("module_call", []):
            module = module_call(call, source)
            if module:
                modules.append(ImportSite((call.start_byte, 0), module))
        modules.sort(key=lambda site: site.position)
        return cls(
            [start for start, _ in found],
            [name for _, name in found],
            [site.position[0] for site in modules],
            modules,
        )

    def scan(self, definition: Node) -> tuple[list[str], list[ImportSite]]:
        """The names used inside ``definition`` in source order, and its module calls."""
        start, end = definition.start_byte, definition.end_byte
        names = self.names[bisect_left(self.starts, start) : bisect_left(self.starts, end)]
        first = bisect_left(self.module_starts, start)
        last = bisect_left(self.module_starts, end)
        return distinct(names), self.modules[first:last]


def file_imports(sites: Iterable[ImportSite]) -> list[str]:
    """The file's imported modules and bindings, distinct, in source order."""
    return distinct(site.name for site in sorted(sites, key=lambda site: site.position))

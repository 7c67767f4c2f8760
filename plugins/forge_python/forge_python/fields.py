"""Extract the fields of a unit from its tree-sitter nodes.

Each function reads one fact the way the stdlib ``ast`` module would see it: where the
unit ends, its docstring, its header, the file's imports and the names a unit uses.
"""

from __future__ import annotations

import ast
import inspect
import warnings
from bisect import bisect_left
from dataclasses import dataclass

from tree_sitter import Node

from forge_python.source import SourceText

__all__ = ["References", "content_end", "docstring_of", "file_imports", "signature_of"]

#: Nodes tree-sitter may leave at the end of a block that ``ast`` does not count.
TRAILING_EXTRAS = frozenset({"comment", "line_continuation"})


def content_end(node: Node) -> int:
    """End byte of ``node`` without the comments tree-sitter leaves at the end of blocks."""
    current = node
    while True:
        last = next((c for c in reversed(current.children) if c.type not in TRAILING_EXTRAS), None)
        if last is None:
            return current.end_byte
        current = last


def docstring_of(definition: Node, source: SourceText) -> str | None:
    """The docstring exactly as ``ast.get_docstring`` returns it, or None."""
    body = definition.child_by_field_name("body")
    if body is None:
        return None
    first = next((c for c in body.children if c.type not in TRAILING_EXTRAS), None)
    if first is None or first.type != "expression_statement":
        return None
    text = source.text(first)
    try:
        if "\\" in text:  # only escapes can warn (invalid escape sequence)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = ast.literal_eval(text)
        else:
            value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None  # not a literal (a call, a name, an f-string, ...): no docstring
    # A str literal (prefixes, implicit concatenation and parentheses included) is exactly
    # what ast.get_docstring accepts; bytes, numbers and tuples are not docstrings.
    return inspect.cleandoc(value) if isinstance(value, str) else None


def signature_of(definition: Node, source: SourceText) -> str:
    """The header from ``async``/``def``/``class`` through the ``:`` that opens the body."""
    colon = next((c for c in definition.children if c.type == ":"), None)
    if colon is not None:
        return source.span(definition.start_byte, colon.end_byte)
    # Broken header: keep what precedes the body, or the first line.
    body = definition.child_by_field_name("body")
    if body is not None:
        return source.span(definition.start_byte, body.start_byte).rstrip()
    return source.text(definition).split("\n", 1)[0].rstrip()


def _compact(text: str) -> str:
    return "".join(text.split())


def file_imports(statements: list[Node], source: SourceText) -> list[str]:
    """Modules and names imported by the given import statements, distinct, in order."""
    names: dict[str, None] = {}
    for statement in sorted(statements, key=lambda n: n.start_byte):
        if statement.type == "future_import_statement":
            names.setdefault("__future__", None)
        module = statement.child_by_field_name("module_name")
        if module is not None:
            module_name = _compact(source.text(module))
            if module_name.strip("."):  # `from . import x` names no module
                names.setdefault(module_name, None)
        for imported in statement.children_by_field_name("name"):
            if imported.type == "aliased_import":
                imported = imported.child_by_field_name("name") or imported
            names.setdefault(_compact(source.text(imported)), None)
    return list(names)


@dataclass(frozen=True)
class References:
    """A file's referenced names in order, so each unit takes its slice by byte range."""

    starts: list[int]
    names: list[str]
    imports: list[str]

    @classmethod
    def of(cls, nodes: list[Node], source: SourceText, imports: list[str]) -> References:
        """Index the name nodes (calls, attributes, decorators, base classes) of a file."""
        ordered = sorted(nodes, key=lambda n: n.start_byte)
        return cls([n.start_byte for n in ordered], [source.text(n) for n in ordered], imports)

    def within(self, start_byte: int, end_byte: int) -> list[str]:
        """Distinct names used between two byte offsets, then the file's imports."""
        first = bisect_left(self.starts, start_byte)
        last = bisect_left(self.starts, end_byte)
        names = dict.fromkeys(self.names[first:last])
        names.update(dict.fromkeys(self.imports))
        return list(names)

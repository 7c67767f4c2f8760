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
from operator import attrgetter, itemgetter

from tree_sitter import Node

from forge_python.grammar import FIELD, KIND, TRAILING_EXTRAS
from forge_python.source import SourceText, span_of

__all__ = [
    "References",
    "content_end",
    "content_end_node",
    "docstring_of",
    "file_imports",
    "signature_of",
    "string_literal_value",
]

#: The numbers (``Node.kind_id``) of the trailing extras and the other kinds read here.
_TRAILING_EXTRA_IDS = frozenset(KIND[name] for name in TRAILING_EXTRAS)
_EXPRESSION_STATEMENT_ID = KIND["expression_statement"]
_COLON_ID = KIND[":"]
_BODY = FIELD["body"]
#: The start of a (start, end) span.
_START = itemgetter(0)
#: A node's start byte.
_START_BYTE = attrgetter("start_byte")
#: String prefixes that leave a literal without backslashes equal to its body.
PLAIN_PREFIXES = frozenset({"", "u", "U", "r", "R"})


def content_end(node: Node) -> int:
    """End byte of ``node`` without the comments tree-sitter leaves at the end of blocks."""
    return content_end_node(node).end_byte


def content_end_node(node: Node, data: bytes | None = None) -> Node:
    """The node that ends where ``node``'s content ends: ``node`` itself, or its last
    descendant before the comments tree-sitter leaves at the end of blocks.

    Its ``end_byte`` is :func:`content_end`; its ``end_point`` the row that ends the unit.
    ``data`` is the file's bytes, when the caller has them: a last line without ``#``
    or ``\\`` cannot end with a comment or a line continuation, so the tree is not asked.
    """
    start, end = node.start_byte, node.end_byte
    if data is not None and end > start and not node.has_error:
        newline = data.rfind(b"\n", start, end)
        line_start = newline + 1 if newline >= 0 else start
        if data.find(b"#", line_start, end) < 0 and data.find(b"\\", line_start, end) < 0:
            return node
    if end > start:
        # Most units end with code: when the leaf holding the last byte is not a comment,
        # every node down to it ends there too, and so does the walk below.
        last = node.descendant_for_byte_range(end - 1, end)
        if (
            last is not None
            and last.child_count == 0
            and last.end_byte == end
            and last.kind_id not in _TRAILING_EXTRA_IDS
        ):
            return node
    current = node
    while True:
        # Step back from the last child (``children`` would build a list of every one).
        index = current.child_count - 1
        last = current.child(index) if index >= 0 else None
        while last is not None and last.kind_id in _TRAILING_EXTRA_IDS:
            index -= 1
            last = current.child(index) if index >= 0 else None
        if last is None:
            return current
        current = last


def docstring_of(definition: Node, source: SourceText, body: Node | None = None) -> str | None:
    """The docstring exactly as ``ast.get_docstring`` returns it, or None.

    ``body`` is the definition's body when the caller already has it.
    """
    if body is None:
        body = definition.child_by_field_id(_BODY)
        if body is None:
            return None
    first = body.child(0) if body.child_count else None
    while first is not None and first.kind_id in _TRAILING_EXTRA_IDS:
        first = first.next_sibling
    if first is None or first.kind_id != _EXPRESSION_STATEMENT_ID:
        return None
    value = string_literal_value(source.text(first))
    if value is None:
        return None
    if "\n" not in value:  # what inspect.cleandoc does to a single line
        return value.expandtabs().lstrip()
    return inspect.cleandoc(value)


def string_literal_value(text: str) -> str | None:
    """What ``ast.literal_eval(text)`` gives when that is a ``str``, else None.

    A str literal (prefixes, implicit concatenation and parentheses included) is exactly
    what ``ast.get_docstring`` accepts; bytes, numbers and tuples are not docstrings.
    Most docstrings are read here without compiling them, and most other statements
    are turned down by their first characters: only a quote, a string prefix, a
    parenthesis (or space, a comment, a line continuation) can start a str expression.
    """
    start = 0
    # A string prefix has two letters at most: a longer word starts a name, never a str.
    while start < 3 and text[start : start + 1].isalpha():
        start += 1
    opener = text[start : start + 1]
    if opener == '"' or opener == "'":
        if text[:start] in PLAIN_PREFIXES:
            value = _plain_body(text, start)
            if value is not None:
                return value
    elif start or not (opener == "(" or opener.isspace() or opener in ("#", "\\")):
        return None
    try:
        if "\\" in text:  # only escapes can warn (invalid escape sequence)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = ast.literal_eval(text)
        else:
            value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None  # not a literal (a call, an f-string, ...): no docstring
    return value if isinstance(value, str) else None


def _plain_body(text: str, start: int) -> str | None:
    """The body of the literal opening at ``start`` when it is the literal's value, else None.

    True when the literal is all of ``text`` and has no backslash (escapes), carriage
    return (newline translation) or NUL: then there is nothing to evaluate.
    """
    if "\\" in text or "\r" in text or "\0" in text:
        return None
    quote = text[start : start + 3]
    if quote != '"""' and quote != "'''":
        quote = text[start]
    end = len(text) - len(quote)
    if end < start + len(quote) or not text.endswith(quote):
        return None
    value = text[start + len(quote) : end]
    if len(quote) == 1:
        # The body must not close the literal early, nor break its line.
        return None if quote in value or "\n" in value else value
    # A triple-quoted literal ends at the first triple quote after it opens.
    return None if quote in value or value.endswith(quote[0]) else value


def signature_of(definition: Node, source: SourceText, body: Node | None = None) -> str:
    """The header from ``async``/``def``/``class`` through the ``:`` that opens the body.

    ``body`` is the definition's body when the caller already has it.
    """
    if body is None:
        body = definition.child_by_field_id(_BODY)
    if body is not None and not definition.has_error:
        # Without errors the grammar has exactly one `:` child, before the body
        # (comments may sit between): step back to it instead of listing every child.
        colon = body.prev_sibling
        while colon is not None and colon.kind_id != _COLON_ID:
            colon = colon.prev_sibling
    else:
        colon = next((c for c in definition.children if c.type == ":"), None)
    if colon is not None:
        return source.span(definition.start_byte, colon.end_byte)
    # Broken header: keep what precedes the body, or the first line.
    if body is not None:
        return source.span(definition.start_byte, body.start_byte).rstrip()
    return source.text(definition).split("\n", 1)[0].rstrip()


def _compact(text: str) -> str:
    return "".join(text.split())


def file_imports(statements: list[Node], source: SourceText) -> list[str]:
    """Modules and names imported by the given import statements, distinct, in order."""
    names: dict[str, None] = {}
    for statement in sorted(statements, key=_START_BYTE):
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
    imports: dict[str, None]
    """The file's imports, in order (a dict: units merge it into theirs at C speed)."""

    @classmethod
    def of(cls, nodes: list[Node], source: SourceText, imports: list[str]) -> References:
        """Index the name nodes (calls, attributes, decorators, base classes) of a file."""
        spans = list(map(span_of, nodes))  # each node asked once, at C speed
        # Captures of different patterns interleave (in two files of three): a stable
        # sort by position, cheap on the sorted runs they come in.
        spans.sort(key=_START)
        return cls(list(map(_START, spans)), source.texts(spans), dict.fromkeys(imports))

    def within(self, start_byte: int, end_byte: int) -> list[str]:
        """Distinct names used between two byte offsets, then the file's imports."""
        first = bisect_left(self.starts, start_byte)
        last = bisect_left(self.starts, end_byte)
        names = dict.fromkeys(self.names[first:last])
        # Most units: no name is also an import. Two key views: the test walks the smaller
        # one (a plain dict argument would be walked whole, import by import).
        if names.keys().isdisjoint(self.imports.keys()):
            return [*names, *self.imports]
        names.update(self.imports)
        return list(names)

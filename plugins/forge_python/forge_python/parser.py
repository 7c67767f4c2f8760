"""Turn the bytes of a Python file into whole code units with tree-sitter.

Which definitions become units: every ``def``, ``async def`` and ``class`` reached from
the module body or from a class body, including those inside compound statements
(``if``/``elif``/``else``, ``try``/``except``/``else``/``finally``, ``with``, ``for``,
``while``, ``match``/``case``). What is defined inside a function is part of that
function, never a unit of its own.

Spans follow the stdlib ``ast`` module: a unit starts at its first decorator (or at the
``def``/``class`` line when undecorated) and ends where ``ast``'s ``end_lineno`` ends, so a
comment trailing the body is not part of the unit (tree-sitter puts it inside the block).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from tree_sitter import Node, Parser, Query, QueryCursor

from forge_core.codeinfo import (
    has_syntax_error,
    is_test_path,
    looks_generated,
    trusted_code_unit,
    trusted_model,
    walk,
)
from forge_core.contracts import CodeUnit, ParseResult, UnitKind
from forge_python.fields import (
    References,
    content_end_node,
    docstring_of,
    file_imports,
    signature_of,
)
from forge_python.grammar import (
    COMPOUND_TYPES,
    DEFINITION_TYPES,
    FIELD,
    IMPORT_TYPES,
    KIND,
    python_language,
)
from forge_python.repair import join_bracketed_lines
from forge_python.source import SourceText

__all__ = [
    "Definition",
    "ParsedTree",
    "find_definitions",
    "get_parser",
    "parse_file",
    "parse_source",
    "parse_tree",
    "python_language",
]

LANGUAGE_NAME = "python"
COMMENT_PREFIXES = ("#",)
#: One query pass finds the imports and the names units refer to (over the units' span
#: only: see :func:`parse_source`).
FILE_QUERY = f"""
[{" ".join(f"({name})" for name in sorted(IMPORT_TYPES))}] @import
(call function: (identifier) @ref)
(attribute attribute: (identifier) @ref)
(decorator (identifier) @ref)
(class_definition superclasses: (argument_list (identifier) @ref))
"""

#: The numbers of those kinds and fields (``Node.kind_id``, ``child_by_field_id``).
_DEFINITION_IDS = frozenset(KIND[name] for name in DEFINITION_TYPES)
_COMPOUND_IDS = frozenset(KIND[name] for name in COMPOUND_TYPES if name in KIND)
_IMPORT_IDS = frozenset(KIND[name] for name in IMPORT_TYPES)
_DECORATED_ID = KIND["decorated_definition"]
_CLASS_ID = KIND["class_definition"]
_NAME, _BODY, _DEFINITION = FIELD["name"], FIELD["body"], FIELD["definition"]

_thread_state = threading.local()


@cache
def file_query() -> Query:
    """The compiled :data:`FILE_QUERY`."""
    return Query(python_language(), FILE_QUERY)


def get_parser() -> Parser:
    """This thread's Python parser, made on first use and reused (parsers are not shared)."""
    parser: Parser | None = getattr(_thread_state, "parser", None)
    if parser is None:
        parser = Parser(python_language())
        _thread_state.parser = parser
    return parser


def flagged(node: Node) -> bool:
    """True when ``node`` holds ERROR or MISSING nodes (tree-sitter's cheap check first)."""
    return node.has_error and has_syntax_error(node)


def error_count(node: Node) -> int:
    """Number of ERROR and MISSING nodes below ``node``."""
    if not node.has_error:
        return 0
    return sum(1 for n in walk(node) if n.type == "ERROR" or n.is_missing)


class ParsedTree(NamedTuple):
    """A file's syntax tree and whether it came from the repaired copy."""

    root: Node
    repaired: bool
    """Parsed from :func:`join_bracketed_lines`' copy, whose rows are not the file's
    (byte offsets are): rows are then counted in the file's own bytes."""


def parse_file(source: SourceText) -> ParsedTree:
    """Parse with tree-sitter; on errors, retry on the copy that works around #256."""
    parser = get_parser()
    root = parser.parse(source.data).root_node
    if not root.has_error:
        return ParsedTree(root, repaired=False)
    repaired = join_bracketed_lines(source)
    if repaired is None:
        return ParsedTree(root, repaired=False)
    candidate = parser.parse(repaired).root_node
    if error_count(candidate) < error_count(root):
        return ParsedTree(candidate, repaired=True)
    return ParsedTree(root, repaired=False)


def parse_tree(source: SourceText) -> Node:
    """The root of :func:`parse_file`'s tree."""
    return parse_file(source).root


# --------------------------------------------------------------------------- discovery


class Definition(NamedTuple):
    """A definition that becomes a unit, before its fields are extracted."""

    node: Node
    """The whole unit: the ``decorated_definition`` or the definition itself."""
    definition: Node
    """The ``function_definition`` or ``class_definition``."""
    name: str
    scope: tuple[str, ...]
    """Names of the enclosing classes, outermost first."""
    kind: UnitKind
    in_test_class: bool


def find_definitions(
    root: Node, source: SourceText, imports: list[Node] | None = None
) -> list[Definition]:
    """Every module- and class-level definition below ``root``, in document order.

    ``imports``, when given, also receives the import statements the walk passes: those
    at module level, in class bodies and in the blocks of compound statements (not
    those inside functions), in no particular order.
    """
    found: list[Definition] = []
    # (node, enclosing class names, enclosing class is test code); a stack, not recursion,
    # so pathological nesting in broken files cannot exhaust the interpreter's stack.
    # Only named nodes can hold definitions: anonymous ones (``:``, ``else``) are skipped.
    stack: list[tuple[Node, tuple[str, ...], bool]] = [
        (child, (), False) for child in reversed(root.named_children)
    ]
    while stack:
        node, scope, in_test_class = stack.pop()
        kind_id = node.kind_id
        if kind_id in _COMPOUND_IDS:
            stack.extend((child, scope, in_test_class) for child in reversed(node.named_children))
            continue
        if kind_id == _DECORATED_ID:
            definition = node.child_by_field_id(_DEFINITION)
            if definition is None:
                continue
            kind_id = definition.kind_id
            if kind_id not in _DEFINITION_IDS:
                continue
        elif kind_id in _DEFINITION_IDS:
            definition = node
        else:
            if kind_id in _IMPORT_IDS and imports is not None:
                imports.append(node)
            continue
        name_node = definition.child_by_field_id(_NAME)
        if name_node is None:
            continue
        name = source.text(name_node)
        is_class = kind_id == _CLASS_ID
        kind = UnitKind.CLASS if is_class else UnitKind.METHOD if scope else UnitKind.FUNCTION
        found.append(Definition(node, definition, name, scope, kind, in_test_class))
        body = definition.child_by_field_id(_BODY)
        if is_class and body is not None:
            test_class = in_test_class or name.startswith(("Test", "test"))
            stack.append((body, (*scope, name), test_class))
    return found


# --------------------------------------------------------------------------- units


@dataclass(frozen=True)
class FileFacts:
    """What every unit of one file shares."""

    path: str
    references: References
    is_test: bool
    generated: bool
    tree_rows: bool
    """The tree's rows are the file's (not parsed from the repaired copy)."""


def build_unit(found: Definition, source: SourceText, facts: FileFacts) -> CodeUnit:
    """Extract every field of one unit."""
    node, definition, name, scope = found.node, found.definition, found.name, found.scope
    start_byte = node.start_byte
    end_node = content_end_node(node, source.data)
    end_byte = end_node.end_byte
    if facts.tree_rows:  # tree-sitter already counted them
        start_row = node.start_point.row
        end_row = end_node.end_point.row
    else:
        start_row = source.row(start_byte)
        end_row = source.row(end_byte)
    body = definition.child_by_field_id(_BODY)
    docstring = docstring_of(definition, source, body) if body is not None else None
    is_test = (
        facts.is_test
        or found.in_test_class
        or name.startswith("test")
        or (found.kind is UnitKind.CLASS and name.startswith("Test"))
    )
    # Every value below already has the contract's type, every field in the
    # contract's order: no need to validate it again.
    return trusted_code_unit(
        {
            "id": "",  # the core gives ids
            "path": facts.path,
            "language": LANGUAGE_NAME,
            "kind": found.kind,
            "name": name,
            "qualified_name": ".".join((*scope, name)) if scope else name,
            "signature": signature_of(definition, source, body),
            "docstring": docstring,
            "leading_comment": source.comments_above(start_byte, start_row, COMMENT_PREFIXES),
            "source": source.span(start_byte, end_byte),
            "start_line": start_row + 1,
            "end_line": end_row + 1,
            "start_byte": start_byte,
            "end_byte": end_byte,
            "references": facts.references.within(start_byte, end_byte),
            "parent": ".".join(scope) or None,
            "content_hash": "",
            "quality": {
                "lines": end_row - start_row + 1,
                "has_doc": bool(docstring and docstring.strip()),
                "is_test": is_test,
                "looks_generated": facts.generated,
                "has_syntax_error": flagged(node),
            },
        }
    )


def parse_source(path: str, data: bytes) -> ParseResult:
    """Parse one Python file (raw bytes) into its units and imports; never raises on bad code."""
    source = SourceText(data)
    root, repaired = parse_file(source)
    walked_imports: list[Node] = []
    definitions = find_definitions(root, source, walked_imports)
    if root.has_error:
        # Imports may sit anywhere in broken code: one query pass over the whole tree
        # finds them and the names units use.
        captures = QueryCursor(file_query()).captures(root)
        imports = file_imports(captures.get("import", []), source)
    elif definitions:
        # Units need the names they use, and functions may import: one query pass over
        # the units' span. The walk has passed every import outside it (statements
        # there are at module level or in compound statements' blocks).
        start = definitions[0].node.start_byte
        end = next(found for found in reversed(definitions) if not found.scope).node.end_byte
        cursor = QueryCursor(file_query())
        cursor.set_byte_range(start, end)
        captures = cursor.captures(root)
        outside = [n for n in walked_imports if n.end_byte <= start or n.start_byte >= end]
        imports = file_imports(captures.get("import", []) + outside, source)
    else:
        # No function or class: every statement is at module level or in a compound
        # statement's block, where the walk has passed each import. No query pass.
        captures = {}
        imports = file_imports(walked_imports, source)
    units: list[CodeUnit] = []
    if definitions:  # what only units need is computed only for files that have some
        facts = FileFacts(
            path=path,
            references=References.of(captures.get("ref", []), source, imports),
            is_test=is_test_path(path),
            generated=looks_generated(source.full_text),
            tree_rows=not repaired,
        )
        units = [build_unit(found, source, facts) for found in definitions]
    return trusted_model(
        ParseResult, {"units": units, "imports": imports, "has_syntax_error": flagged(root)}
    )

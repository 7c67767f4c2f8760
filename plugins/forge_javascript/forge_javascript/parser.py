"""Turn a JavaScript file into Forge code units with tree-sitter."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from tree_sitter import Node, Parser, Query, QueryCursor

from forge_core.codeinfo import (
    comment_block_above,
    has_syntax_error,
    is_test_path,
    leading_comment_block,
    looks_generated,
    node_text,
    trusted_code_unit,
    trusted_model,
)
from forge_core.contracts import CodeUnit, ParseResult
from forge_javascript.grammar import javascript_language
from forge_javascript.references import FileReferences, distinct, file_imports, scan_unit
from forge_javascript.units import FoundUnit, ImportSite, Landmarks, UnitFinder

LANGUAGE_NAME = "javascript"
#: Line-comment starts, for the comment block above a unit.
LINE_COMMENT_PREFIXES = ("//",)
#: The first character of a line that is not indentation.
NOT_INDENT = re.compile(rb"[^ \t\f\v\r]")


#: One pass over the tree finds what makes units and imports (``landmark``,
#: ``module_call``: ``import()``) and the names units use: the callee of a call
#: (``callee``: a ``require`` callee makes a module call instead, see
#: :func:`file_captures`), the constructor of ``new``, member names, and capitalised
#: JSX components. No text predicates: py-tree-sitter checks those on every candidate
#: (``#eq?`` on each call's callee cost a fifth of the query's time).
FILE_QUERY = """
[
  (function_expression) (generator_function) (arrow_function) (function_declaration)
  (generator_function_declaration) (class) (class_declaration) (method_definition)
  (import_statement) (export_statement)
] @landmark
(call_expression function: (import)) @module_call
(call_expression function: (identifier) @callee)
(new_expression constructor: (identifier) @name)
(member_expression property: [(property_identifier) (private_property_identifier)] @name)
(jsx_opening_element name: (identifier) @component)
(jsx_self_closing_element name: (identifier) @component)
"""
#: The captures that can make a unit or an import.
LANDMARKS = ("landmark", "module_call")


@functools.cache
def javascript_parser() -> Parser:
    """The process's tree-sitter parser for JavaScript (JSX included), made once."""
    return Parser(javascript_language())


@functools.cache
def file_query() -> Query:
    """The compiled :data:`FILE_QUERY`."""
    return Query(javascript_language(), FILE_QUERY)


@dataclass(frozen=True)
class FileFacts:
    """What every unit of one file shares."""

    path: str
    source: bytes
    text: str
    """``source`` decoded, without a byte order mark."""
    imports: list[str]
    is_test: bool
    generated: bool

    @functools.cached_property
    def ascii(self) -> bool:
        """The file is ASCII: offsets in ``source`` are offsets in ``text``."""
        return self.source.isascii()

    @functools.cached_property
    def lines(self) -> list[str]:
        """``text`` split on ``\\n``, made only when a non-ASCII file needs it."""
        return self.text.split("\n")


def file_captures(root: Node, source: bytes) -> dict[str, list[Node]]:
    """:data:`FILE_QUERY`'s captures in ``root``, by name, callees sorted out.

    A ``require(…)`` call joins ``module_call``, every other callee joins ``name``
    (what ``#eq?``/``#not-eq? "require"`` predicates in the query would do, cheaper).
    """
    captures = QueryCursor(file_query()).captures(root)
    names = captures.setdefault("name", [])
    module_calls = captures.setdefault("module_call", [])
    for callee in captures.pop("callee", []):
        # The text first: ``parent`` walks down from the root of the tree.
        is_require = source[callee.start_byte : callee.end_byte] == b"require"
        call = callee.parent if is_require else None  # the call whose function it is
        if call is not None:
            module_calls.append(call)
        else:
            names.append(callee)
    return captures


def parse_javascript(path: str, source: bytes) -> ParseResult:
    """Parse one file's bytes into whole units; bad source is flagged, never raised."""
    tree = javascript_parser().parse(source)
    root = tree.root_node
    captures = file_captures(root, source)
    landmarks = Landmarks.of([n for key in LANDMARKS for n in captures.get(key, [])])
    finder = UnitFinder(source, landmarks)
    found = finder.find(root)
    if not found:
        scans = []
    elif root.has_error:
        # A broken tree may hold zero-width (MISSING) names at a unit's edge: walk each unit.
        scans = [scan_unit(unit.definition, source) for unit in found]
    else:
        references = FileReferences.of(captures, source)
        scans = [references.scan(unit.definition) for unit in found]
    sites: list[ImportSite] = list(finder.imports)
    for _, modules in scans:
        sites.extend(modules)
    imports = file_imports(sites)
    if not found:
        return trusted_model(
            ParseResult, {"units": [], "imports": imports, "has_syntax_error": root.has_error}
        )
    # ``utf-8-sig``: a byte order mark must not hide a comment on the first line.
    text = source.decode("utf-8-sig", errors="replace")
    facts = FileFacts(
        path=path,
        source=source,
        text=text,
        imports=imports,
        is_test=is_test_path(path),
        generated=looks_generated(text),
    )
    units = [build_unit(unit, names, facts) for unit, (names, _) in zip(found, scans, strict=True)]
    return trusted_model(
        ParseResult, {"units": units, "imports": imports, "has_syntax_error": root.has_error}
    )


def build_unit(found: FoundUnit, names: list[str], facts: FileFacts) -> CodeUnit:
    """One ``CodeUnit`` from a located unit and the facts of its file."""
    outer = found.outer
    start_row, _ = outer.start_point
    end_row, end_column = outer.end_point
    if end_column == 0 and end_row > start_row:
        end_row -= 1  # a node ending with a newline ends on the line before
    docstring = jsdoc_above(outer, facts.source)
    leading = None if docstring is not None else comment_above(outer, facts)
    # Every value below already has the contract's type, every field in the
    # contract's order: no need to validate it again.
    return trusted_code_unit(
        {
            "id": "",  # the core gives ids
            "path": facts.path,
            "language": LANGUAGE_NAME,
            "kind": found.kind,
            "name": found.name,
            "qualified_name": found.qualified_name,
            "signature": signature_of(found, facts.source),
            "docstring": docstring,
            "leading_comment": leading,
            "source": node_text(outer, facts.source),
            "start_line": start_row + 1,
            "end_line": end_row + 1,
            "start_byte": outer.start_byte,
            "end_byte": outer.end_byte,
            "references": distinct([*names, *facts.imports]),
            "parent": found.parent,
            "content_hash": "",
            "quality": {
                "lines": end_row - start_row + 1,
                "has_doc": docstring is not None,
                "is_test": facts.is_test,
                "looks_generated": facts.generated,
                # ``has_error`` is tree-sitter's own summary: skip the walk when it is clean.
                "has_syntax_error": outer.has_error and has_syntax_error(outer),
            },
        }
    )


def jsdoc_above(node: Node, source: bytes) -> str | None:
    """The ``/** … */`` comment right before ``node`` (no blank line between), as written."""
    previous = node.prev_sibling
    if previous is None or previous.type != "comment":
        return None
    text = node_text(previous, source)
    if not text.startswith("/**") or text.startswith("/**/"):
        return None
    gap = source[previous.end_byte : node.start_byte]
    if gap.strip() or gap.count(b"\n") > 1:
        return None
    return text


def comment_above(node: Node, facts: FileFacts) -> str | None:
    """The ``//`` lines directly above ``node``, when it starts its line."""
    # The column is in bytes: the line starts that many bytes before the node.
    line_start = node.start_byte - node.start_point.column
    first = NOT_INDENT.search(facts.source, line_start)
    if first is not None and first.start() != node.start_byte:
        return None
    if facts.ascii:
        return comment_block_above(facts.text, line_start, LINE_COMMENT_PREFIXES)
    return leading_comment_block(facts.lines, node.start_point.row, LINE_COMMENT_PREFIXES)


def signature_of(found: FoundUnit, source: bytes) -> str:
    """The declaration up to its body's ``{`` (a concise arrow: up to ``=>``)."""
    definition = found.definition
    body = definition.child_by_field_name("body")
    if body is None:
        end = found.outer.end_byte
    elif definition.type == "arrow_function" and body.type != "statement_block":
        arrows = [child for child in definition.children if child.type == "=>"]
        end = arrows[0].end_byte if arrows else body.start_byte
    else:
        end = body.start_byte
    text = source[found.outer.start_byte : end].decode("utf-8", errors="replace").rstrip()
    return text.split("\n", 1)[0] if body is None else text

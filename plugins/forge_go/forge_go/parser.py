"""Parse Go source into Forge code units with tree-sitter.

The units are a file's top-level declarations, always whole:

* ``func Name(...)`` → FUNCTION, qualified name ``Name`` (generic functions alike);
* ``func (r *Recv[T]) Name(...)`` → METHOD, qualified ``(*Recv).Name`` for a pointer
  receiver and ``Recv.Name`` for a value receiver (Go's method-expression spelling),
  type parameters dropped; ``parent`` is ``Recv``, the type unit's qualified name;
* ``type Name ...`` → TYPE for structs, interfaces, any other named type and aliases;
  a grouped ``type ( A ...; B ... )`` gives one unit per spec.

Signatures run up to the body's ``{``: ``func (l *List[T]) Push(v T)``,
``type List[T any] struct``; a type without braces keeps its whole declaration
(``type Celsius float64``); a spec of a group gets its ``type`` keyword back.

A unit's span starts at ``func``/``type`` (for a spec of a grouped declaration, at its
name) and never includes the doc comment. The doc comment, the comments directly above
the declaration with no blank line between, is the ``docstring``, kept as written
(``//`` markers included, one comment per line). ``leading_comment`` stays None: in Go
the comment above a declaration *is* its documentation, and storing it twice would
repeat it in every prompt built from the unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from tree_sitter import Node, Parser

from forge_core.codeinfo import (
    has_syntax_error,
    is_test_path,
    looks_generated,
    node_text,
    trusted_code_unit,
    trusted_model,
)
from forge_core.contracts import CodeUnit, ParseRequest, ParseResult, UnitKind
from forge_go.comments import doc_comment
from forge_go.grammar import go_language
from forge_go.references import FileImports, ReferringNodes, read_imports, unit_references

LANGUAGE = "go"


@lru_cache(maxsize=1)
def go_parser() -> Parser:
    """The process's tree-sitter parser for Go, built once and reused for every file."""
    return Parser(go_language())


@dataclass(frozen=True)
class GoFile:
    """The file-level facts every unit of one file shares."""

    path: str
    source: bytes
    imports: FileImports
    is_test: bool
    generated: bool
    referring: ReferringNodes
    text: str | None
    """``source`` decoded when it is ASCII (its byte offsets are then text offsets)."""


#: Top-level declarations that make units.
DECLARATION_TYPES = frozenset({"function_declaration", "method_declaration", "type_declaration"})


def parse_go(request: ParseRequest) -> ParseResult:
    """Parse one Go file into whole units, its import paths and a syntax-error flag."""
    source = request.source
    root = go_parser().parse(source).root_node
    top_level = list(top_level_nodes(root))
    imports = read_imports(top_level, source)
    declarations = [node for node in top_level if node.type in DECLARATION_TYPES]
    units: list[CodeUnit] = []
    if declarations:  # what only units need is computed only for files that have some
        text = source.decode("utf-8", errors="replace")
        go_file = GoFile(
            path=request.path,
            source=source,
            imports=imports,
            is_test=is_test_path(request.path),
            generated=looks_generated(text),
            # Units lie between the first declaration's start and the last one's end.
            referring=ReferringNodes.of(
                root, go_language(), (declarations[0].start_byte, declarations[-1].end_byte)
            ),
            text=text if source.isascii() else None,
        )
        units = [unit for node in declarations for unit in declaration_units(node, go_file)]
    return trusted_model(
        ParseResult,
        {
            "units": units,
            "imports": list(imports.paths),
            "has_syntax_error": has_syntax_error(root),
        },
    )


def top_level_nodes(root: Node) -> Iterator[Node]:
    """The file's top-level nodes, looking inside the ERROR nodes of broken code."""
    stack = list(reversed(root.children))
    while stack:
        node = stack.pop()
        if node.type == "ERROR":
            stack.extend(reversed(node.children))
        else:
            yield node


def declaration_units(node: Node, go_file: GoFile) -> list[CodeUnit]:
    """The units one top-level node declares (none for imports, vars, consts, comments)."""
    if node.type == "function_declaration":
        return function_units(node, go_file)
    if node.type == "method_declaration":
        return method_units(node, go_file)
    if node.type == "type_declaration":
        return type_units(node, go_file)
    return []


def function_units(node: Node, go_file: GoFile) -> list[CodeUnit]:
    """A ``func`` declaration as a FUNCTION unit (none when it has no name)."""
    name_node = node.child_by_field_name("name")
    if name_node is None:
        return []
    name = node_text(name_node, go_file.source)
    body = node.child_by_field_name("body")
    return [
        build_unit(
            node,
            go_file,
            kind=UnitKind.FUNCTION,
            name=name,
            qualified_name=name,
            signature=header_text(node, body.start_byte if body else None, go_file.source),
        )
    ]


def method_units(node: Node, go_file: GoFile) -> list[CodeUnit]:
    """A method declaration as a METHOD unit qualified by its receiver type."""
    name_node = node.child_by_field_name("name")
    if name_node is None:
        return []
    name = node_text(name_node, go_file.source)
    receiver = receiver_type(node.child_by_field_name("receiver"), go_file.source)
    if receiver is None:  # broken receiver: still a whole unit, just unqualified
        qualified_name, parent = name, None
    else:
        parent, pointer = receiver
        qualified_name = f"(*{parent}).{name}" if pointer else f"{parent}.{name}"
    body = node.child_by_field_name("body")
    return [
        build_unit(
            node,
            go_file,
            kind=UnitKind.METHOD,
            name=name,
            qualified_name=qualified_name,
            signature=header_text(node, body.start_byte if body else None, go_file.source),
            parent=parent,
        )
    ]


def receiver_type(receiver: Node | None, source: bytes) -> tuple[str, bool] | None:
    """The receiver's base type name and whether it is a pointer (``*List[T]`` → List, True)."""
    if receiver is None:
        return None
    params = [c for c in receiver.named_children if c.type == "parameter_declaration"]
    type_node = params[0].child_by_field_name("type") if params else None
    pointer = False
    while type_node is not None:
        if type_node.type == "type_identifier":
            return node_text(type_node, source), pointer
        if type_node.type == "generic_type":
            type_node = type_node.child_by_field_name("type")
        elif type_node.type in ("pointer_type", "parenthesized_type"):
            pointer = pointer or type_node.type == "pointer_type"
            inner = [c for c in type_node.named_children if c.type != "comment"]
            type_node = inner[0] if inner else None
        else:
            return None
    return None


def type_units(declaration: Node, go_file: GoFile) -> list[CodeUnit]:
    """One TYPE unit per spec of a ``type`` declaration (grouped or not)."""
    specs = [c for c in declaration.named_children if c.type in ("type_spec", "type_alias")]
    grouped = len(specs) > 1 or any(c.type == "(" for c in declaration.children)
    units = []
    for spec in specs:
        name_node = spec.child_by_field_name("name")
        if name_node is None:
            continue
        name = node_text(name_node, go_file.source)
        span = spec if grouped else declaration
        header = header_text(span, type_body_start(spec), go_file.source)
        units.append(
            build_unit(
                span,
                go_file,
                kind=UnitKind.TYPE,
                name=name,
                qualified_name=name,
                signature=f"type {header}" if grouped else header,
            )
        )
    return units


def type_body_start(spec: Node) -> int | None:
    """The byte offset of the ``{`` of a struct or interface type; None for other types."""
    type_node = spec.child_by_field_name("type")
    if type_node is None or type_node.type not in ("struct_type", "interface_type"):
        return None
    for child in type_node.children:
        if child.type in ("{", "field_declaration_list"):
            return child.start_byte
    return None


def header_text(node: Node, end_byte: int | None, source: bytes) -> str:
    """The text of ``node`` from its start up to ``end_byte`` (a body's ``{``), trimmed."""
    end = node.end_byte if end_byte is None else end_byte
    return source[node.start_byte : end].decode("utf-8", errors="replace").rstrip()


def build_unit(
    node: Node,
    go_file: GoFile,
    *,
    kind: UnitKind,
    name: str,
    qualified_name: str,
    signature: str,
    parent: str | None = None,
) -> CodeUnit:
    """The CodeUnit spanning ``node``, with its doc comment, references and quality."""
    start_line = node.start_point.row + 1
    end_row = node.end_point.row
    if node.end_point.column == 0 and end_row > node.start_point.row:
        end_row -= 1  # the node ends with a newline: its last line is the one before
    end_line = end_row + 1
    docstring = doc_comment(node, go_file.source)
    # Every value below already has the contract's type, every field in the
    # contract's order: no need to validate it again.
    return trusted_code_unit(
        {
            "id": "",  # the core gives ids
            "path": go_file.path,
            "language": LANGUAGE,
            "kind": kind,
            "name": name,
            "qualified_name": qualified_name,
            "signature": signature,
            "docstring": docstring,
            "leading_comment": None,
            "source": node_text(node, go_file.source),
            "start_line": start_line,
            "end_line": end_line,
            "start_byte": node.start_byte,
            "end_byte": node.end_byte,
            "references": unit_references(
                node, go_file.source, go_file.imports, go_file.referring, go_file.text
            ),
            "parent": parent,
            "content_hash": "",
            "quality": {
                "lines": end_line - start_line + 1,
                "has_doc": docstring is not None,
                "is_test": go_file.is_test,
                "looks_generated": go_file.generated,
                "has_syntax_error": has_syntax_error(node) or broken_off(node),
            },
        }
    )


def broken_off(node: Node) -> bool:
    """True when an ERROR node continues ``node``'s last line: the declaration was cut short.

    tree-sitter closes ``func F() int {`` + garbage as a body-less declaration (legal in
    Go for assembly functions) followed by an ERROR; the unit is then only a header.
    """
    after = node.next_sibling
    return (
        after is not None and after.type == "ERROR" and after.start_point.row == node.end_point.row
    )

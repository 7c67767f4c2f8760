"""Referring nodes found by one query give exactly what walking each unit gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from tree_sitter import Node

from forge_core.contracts import CodeUnit, ParseRequest
from forge_go.parser import DECLARATION_TYPES, go_parser, parse_go, top_level_nodes
from forge_go.references import FileImports, ReferringNodes, read_imports, unit_references

FIXTURES = Path(__file__).parent / "fixtures"
NAMES = sorted(p.name for p in FIXTURES.iterdir())


def _both_ways(source: bytes) -> None:
    root = go_parser().parse(source).root_node
    top_level = list(top_level_nodes(root))
    imports = read_imports(top_level, source)
    spans = [node for node in top_level if node.type in DECLARATION_TYPES]
    # Those found in the declarations' span, as the parser finds them, and in the whole file.
    span = (spans[0].start_byte, spans[-1].end_byte) if spans else None
    for referring in (ReferringNodes.of(root, go_parser().language, span),
                      ReferringNodes.of(root, go_parser().language)):  # fmt: skip
        _same_references(source, spans, imports, referring)


def _same_references(
    source: bytes, spans: list[Node], imports: FileImports, referring: ReferringNodes
) -> None:
    spans = spans + [
        spec for node in spans for spec in node.named_children if spec.type == "type_spec"
    ]
    for node in spans:
        walked = unit_references(node, source, imports)
        assert unit_references(node, source, imports, referring) == walked


@pytest.mark.parametrize("name", NAMES)
def test_referring_nodes_change_nothing(name: str) -> None:
    """Every declaration (and grouped type spec) of every fixture, and of their prefixes."""
    data = (FIXTURES / name).read_bytes()
    _both_ways(data)
    for end in range(0, len(data), 11):
        _both_ways(data[:end])


@pytest.mark.parametrize("name", NAMES)
def test_units_equal_validated_ones(name: str) -> None:
    """Units built without validation equal what pydantic makes of the same values."""
    # Every field but the id, which the core sets (Go's doc comment is the docstring:
    # ``leading_comment`` is given as None).
    fields = set(CodeUnit.model_fields)  # the parsers pass every field, an empty id too
    source = (FIXTURES / name).read_bytes()
    result = parse_go(ParseRequest(path=f"pkg/{name}", language="go", source=source))
    assert result.units
    for unit in result.units:
        assert CodeUnit.model_validate(unit.model_dump()) == unit
        assert unit.model_fields_set == fields

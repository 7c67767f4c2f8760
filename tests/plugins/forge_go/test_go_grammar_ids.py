"""The kind and field numbers the reference scan uses name the same nodes as the names."""

from __future__ import annotations

from pathlib import Path

from forge_core.codeinfo import walk
from forge_go.grammar import FIELD, KIND
from forge_go.parser import go_parser

FIXTURES = Path(__file__).parent / "fixtures"
#: A generic call, which tree-sitter reads as a type conversion (no fixture has one).
GENERIC_CALL = b"package p\n\nfunc F(xs []int) []int { return Map[int](xs) }\n"


def test_kind_and_field_ids_match_the_names_in_every_fixture() -> None:
    seen: set[str] = set()
    sources = [(f.name, f.read_bytes()) for f in sorted(FIXTURES.glob("*.go"))]
    for label, source in [*sources, ("generic call", GENERIC_CALL)]:
        root = go_parser().parse(source).root_node
        for node in walk(root):
            for name, number in KIND.items():
                assert (node.type == name) == (node.kind_id == number), (label, name)
            for field, number in FIELD.items():
                by_name, by_id = node.child_by_field_name(field), node.child_by_field_id(number)
                assert (by_name is None and by_id is None) or by_name == by_id, field
            seen.add(node.type)
    assert set(KIND) <= seen, f"no fixture has {sorted(set(KIND) - seen)}"

"""The kind numbers the unit finder compares with name the same nodes as the kind names."""

from __future__ import annotations

from pathlib import Path

from forge_core.codeinfo import walk
from forge_javascript.grammar import KIND
from forge_javascript.parser import javascript_parser

FIXTURES = Path(__file__).parent / "fixtures"


def test_kind_ids_match_kind_names_in_every_fixture() -> None:
    seen: set[str] = set()
    for fixture in sorted(FIXTURES.iterdir()):
        root = javascript_parser().parse(fixture.read_bytes()).root_node
        for node in walk(root):
            for name, number in KIND.items():
                assert (node.type == name) == (node.kind_id == number), (fixture.name, name)
            seen.add(node.type)
    assert set(KIND) <= seen, f"no fixture has {sorted(set(KIND) - seen)}"

"""The query-driven walk gives exactly what walking every node gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.contracts import CodeUnit
from forge_javascript.parser import LANDMARKS, file_captures, javascript_parser, parse_javascript
from forge_javascript.references import FileReferences, scan_unit
from forge_javascript.units import Landmarks, UnitFinder

FIXTURES = Path(__file__).parent / "fixtures"
NAMES = sorted(p.name for p in FIXTURES.iterdir())


def _both_ways(source: bytes) -> None:
    root = javascript_parser().parse(source).root_node
    captures = file_captures(root, source)
    landmarks = Landmarks.of([n for key in LANDMARKS for n in captures.get(key, [])])
    pruned, full = UnitFinder(source, landmarks), UnitFinder(source)
    found = pruned.find(root)
    assert found == full.find(root)
    assert pruned.imports == full.imports
    if not root.has_error:
        references = FileReferences.of(captures, source)
        for unit in found:
            assert references.scan(unit.definition) == scan_unit(unit.definition, source)


@pytest.mark.parametrize("name", NAMES)
def test_landmarks_and_captures_change_nothing(name: str) -> None:
    """Skipping subtrees without landmarks, and names from one query, change no result."""
    _both_ways((FIXTURES / name).read_bytes())


@pytest.mark.parametrize("name", NAMES)
def test_landmarks_change_nothing_in_broken_code(name: str) -> None:
    """The same on every prefix of a fixture (trees full of ERROR and MISSING nodes)."""
    data = (FIXTURES / name).read_bytes()
    for end in range(0, len(data), 11):
        _both_ways(data[:end])


@pytest.mark.parametrize("name", NAMES)
def test_units_equal_validated_ones(name: str) -> None:
    """Units built without validation equal what pydantic makes of the same values."""
    fields = set(CodeUnit.model_fields)  # the parsers pass every field, an empty id too
    for unit in parse_javascript(name, (FIXTURES / name).read_bytes()).units:
        assert CodeUnit.model_validate(unit.model_dump()) == unit
        assert unit.model_fields_set == fields

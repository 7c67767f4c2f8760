"""Units serialised file by file (as helper processes do) equal the whole-run JSONL."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest

from forge_core.codeinfo import trusted_code_unit
from forge_core.contracts import CodeUnit, UnitKind, content_hash
from forge_core.files import write_jsonl
from forge_core.mining import (
    FileOutcome,
    MiningReport,
    assign_unit_ids,
    unit_json_line,
    units_as_jsonl,
)
from tests.core.test_contracts import make_unit


def file_units(path: str) -> list:
    units = [make_unit().model_copy(update={"path": path}) for _ in range(3)]
    units[2] = units[2].model_copy(update={"qualified_name": "Stack.pop", "name": "pop"})
    return units


def test_file_by_file_ids_and_lines_equal_the_whole_run(tmp_path: Path) -> None:
    files = [file_units("a.py"), file_units("b.py")]
    whole = tmp_path / "whole.jsonl"
    write_jsonl(whole, assign_unit_ids([u.model_copy() for units in files for u in units]))
    pieces = b"".join(units_as_jsonl([u.model_copy() for u in units]) for units in files)
    assert pieces == whole.read_bytes()
    ids = [json.loads(line)["id"] for line in pieces.splitlines()]
    assert ids == [
        "a.py::Stack.push", "a.py::Stack.push~2", "a.py::Stack.pop",
        "b.py::Stack.push", "b.py::Stack.push~2", "b.py::Stack.pop",
    ]  # fmt: skip


def test_a_serialised_outcome_counts_as_the_units_did() -> None:
    plain = FileOutcome("a.py", "python", 10, units=file_units("a.py"))
    moved = FileOutcome("a.py", "python", 10, units=file_units("a.py"))
    moved.serialise()
    assert moved.units == [] and moved.unit_lines == plain.jsonl()
    reports = [MiningReport(), MiningReport()]
    reports[0].add(plain)
    reports[1].add(moved)
    assert reports[0].as_json() == reports[1].as_json()
    assert reports[1].as_json()["units_by_kind"] == {"python.method": 3}


def test_orjson_lines_are_pydantics_json_byte_for_byte() -> None:
    awkward = 'é ü 漢字 🚀 \u2028 \x00 \x1f "quoted" back\\slash \t\n end'
    unit = make_unit().model_copy(
        update={"docstring": awkward, "leading_comment": None, "references": ["a", awkward]}
    )
    assert unit_json_line(unit) == unit.model_dump_json().encode() + b"\n"
    assert json.loads(unit_json_line(unit))["docstring"] == awkward


def _parser_fields(**quality: object) -> dict:
    """A parser's fields for one unit: every field but the id, in the contract's order."""
    return {
        "path": "pkg/stack.py",
        "language": "python",
        "kind": UnitKind.METHOD,
        "name": "push",
        "qualified_name": "Stack.push",
        "signature": "def push(self, item):",
        "docstring": "Add one.",
        "leading_comment": None,
        "source": 'def push(self, item):\n    """Add one."""\n    self.items.append(item)',
        "start_line": 3,
        "end_line": 5,
        "start_byte": 20,
        "end_byte": 90,
        "references": ["items", "append"],
        "parent": "Stack",
        "content_hash": "",
        "quality": {
            "lines": 3,
            "has_doc": True,
            "is_test": False,
            "looks_generated": False,
            "has_syntax_error": False,
            **quality,
        },
    }


def test_trusted_units_equal_validated_ones_in_every_shape() -> None:
    """Complete ordered fields (the parsers' fast path), reordered and partial ones alike."""
    complete = _parser_fields()
    with_id = {"id": "", **_parser_fields()}
    reordered = dict(reversed(list(_parser_fields().items())))
    partial = {k: v for k, v in _parser_fields().items() if k not in {"parent", "content_hash"}}
    partial["quality"] = {"lines": 3, "has_doc": True}
    for fields in (complete, with_id, reordered, partial):
        expected = CodeUnit.model_validate(copy.deepcopy(fields))
        unit = trusted_code_unit(copy.deepcopy(fields))
        assert unit == expected
        assert unit.model_fields_set == expected.model_fields_set
        assert unit.quality.model_fields_set == expected.quality.model_fields_set
        assert unit.content_hash == content_hash(fields["source"])
        assert unit_json_line(unit) == expected.model_dump_json().encode() + b"\n"
    assert "id" not in trusted_code_unit(_parser_fields()).model_fields_set


def test_trusted_units_refuse_unknown_fields() -> None:
    with pytest.raises(TypeError, match="not the fields of CodeUnit"):
        trusted_code_unit({**_parser_fields(), "colour": "red"})
    with pytest.raises(TypeError, match="not the fields of CodeUnit"):
        trusted_code_unit(_parser_fields(speed=3))


def test_a_unit_built_without_validation_is_written_as_pydantic_writes_it() -> None:
    unit = make_unit()
    values = {**unit.__dict__, "quality": dict(unit.quality.__dict__)}
    constructed = CodeUnit.model_construct(**values)  # quality left a plain dict
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warns that quality is no UnitQuality
        assert unit_json_line(constructed) == unit.model_dump_json().encode() + b"\n"


def test_trusted_small_contracts_equal_validated_ones_and_need_every_field_in_order() -> None:
    from forge_core.codeinfo import trusted_model
    from forge_core.contracts import ParseRequest, ParseResult

    request = trusted_model(ParseRequest, {"path": "a.py", "language": "python", "source": b"x"})
    assert request == ParseRequest(path="a.py", language="python", source=b"x")
    assert request.model_fields_set == {"path", "language", "source"}
    result = trusted_model(ParseResult, {"units": [], "imports": ["os"], "has_syntax_error": True})
    assert result == ParseResult(imports=["os"], has_syntax_error=True)
    assert ParseResult.model_validate(result) is result  # the core takes it as it is
    with pytest.raises(TypeError, match="not every field of ParseRequest in order"):
        trusted_model(ParseRequest, {"language": "python", "path": "a.py", "source": b""})
    with pytest.raises(TypeError, match="not every field of ParseResult"):
        trusted_model(ParseResult, {"units": []})


def test_report_counts_kinds_across_batches_and_kind_spellings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kinds counted in batches, as ``UnitKind`` (this process) or text (helpers), add up."""
    from forge_core import mining
    from forge_core.contracts import UnitKind
    from forge_core.mining import FileOutcome, MiningReport

    monkeypatch.setattr(mining, "PENDING_KINDS", 3)
    report = MiningReport()
    for index in range(5):
        outcome = FileOutcome(f"f{index}.py", "python", 10)
        outcome.unit_lines = b""
        kind = UnitKind.FUNCTION if index % 2 else "function"
        outcome.unit_kinds = [("python", kind), ("python", "class"), ("go", "type")]
        report.add(outcome)
    assert report.units == 15
    assert report.by_language == {"python": 10, "go": 5}
    assert report.by_kind == {"python.function": 5, "python.class": 5, "go.type": 5}
    assert report.as_json()["units_by_kind"] == {
        "go.type": 5,
        "python.class": 5,
        "python.function": 5,
    }

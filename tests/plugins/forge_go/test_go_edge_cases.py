"""forge-go: doc-comment and import corner cases, and bad input that must never crash."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from forge_core.contracts import ParseRequest, ParseResult
from forge_go.parser import parse_go
from forge_go.references import assumed_package_name

FIXTURES = Path(__file__).parent / "fixtures"


def parse(source: bytes, path: str = "pkg/a.go") -> ParseResult:
    """Parse Go bytes."""
    return parse_go(ParseRequest(path=path, language="go", source=source))


def names(result: ParseResult) -> list[str]:
    """The qualified names of a result's units."""
    return [unit.qualified_name for unit in result.units]


# --------------------------------------------------------------------------- doc comments


def test_crlf_doc_comment_has_no_carriage_returns() -> None:
    """Windows line endings are line endings, not comment text."""
    result = parse(b"package p\r\n\r\n// Doc line.\r\n// Two.\r\nfunc F() {\r\n}\r\n")
    (unit,) = result.units
    assert unit.docstring == "// Doc line.\n// Two."
    assert (unit.start_line, unit.end_line) == (5, 6)
    assert unit.signature == "func F()"


def test_comment_after_code_on_the_line_above_is_not_a_doc_comment() -> None:
    """A trailing comment belongs to the line it ends, not to the next declaration."""
    result = parse(b"package p\n\nvar x = 1 // about x\nfunc F() {}\n")
    assert result.units[0].docstring is None


def test_comment_on_the_declaration_line_is_not_its_doc_comment() -> None:
    """Only comments above the declaration document it."""
    result = parse(b"package p\n\n/* inline */ func F() {}\n")
    assert result.units[0].docstring is None


def test_group_doc_comment_is_not_inherited_by_its_specs() -> None:
    """`// Doc` above `type (` documents the group, each spec has its own doc."""
    result = parse(b"package p\n\n// Doc.\ntype (\n\tA int\n\t// B doc.\n\tB string\n)\n")
    assert [(u.name, u.docstring, u.start_line) for u in result.units] == [
        ("A", None, 5),
        ("B", "// B doc.", 7),
    ]


def test_single_spec_in_parentheses_is_a_grouped_spec() -> None:
    """`type ( A struct{} )` spans the spec, with the `type` keyword in the signature."""
    result = parse(b"package p\n\ntype (\n\tA struct {\n\t\tx int\n\t}\n)\n")
    (unit,) = result.units
    assert (unit.start_line, unit.end_line, unit.signature) == (4, 6, "type A struct")
    assert unit.source == "A struct {\n\t\tx int\n\t}"


# --------------------------------------------------------------------------- imports, receivers


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("fmt", "fmt"),
        ("net/http", "http"),
        ("github.com/x/y/v2", "y"),
        ("gopkg.in/yaml.v3", "yaml"),
        ("github.com/mattn/go-sqlite3", "sqlite3"),
        ("v2", "v2"),
    ],
)
def test_assumed_package_name(path: str, name: str) -> None:
    """An unaliased import is named after its last path element, as goimports guesses."""
    assert assumed_package_name(path) == name


def test_blank_and_dot_imports_give_paths_but_no_names() -> None:
    """`_` and `.` are not names a unit can refer to the package by."""
    source = b'package p\n\nimport (\n\t_ "embed"\n\t. "math"\n\tj "encoding/json"\n)\n\n'
    source += b"func F() { j.Marshal(Pi) }\n"
    result = parse(source)
    assert result.imports == ["embed", "math", "encoding/json"]
    assert result.units[0].references == ["j", "Marshal", "embed", "math", "encoding/json"]


def test_single_import_and_raw_string_import_path() -> None:
    """Both string forms of an import path are read."""
    result = parse(b'package p\n\nimport "os"\nimport `io`\n\nfunc F() { os.Exit(io.EOF) }\n')
    assert result.imports == ["os", "io"]
    assert result.units[0].references == ["os", "Exit", "io", "EOF"]


def test_unusual_receivers() -> None:
    """Unnamed, blank and parenthesised receivers; a generic receiver with two parameters."""
    source = b"""package p

func (T) A() {}
func (_ *T) B() {}
func (t (*T)) C() {}
func (m *Map[K, V]) D() {}
"""
    result = parse(source)
    assert names(result) == ["T.A", "(*T).B", "(*T).C", "(*Map).D"]
    assert [unit.parent for unit in result.units] == ["T", "T", "T", "Map"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("source", [b"", b"\n\n   \n", b"// only a comment\n", b"package p\n"])
def test_files_without_declarations(source: bytes) -> None:
    """Empty and declaration-free files give no units and no error."""
    assert parse(source) == ParseResult()


def test_invalid_utf8_keeps_original_byte_offsets() -> None:
    """Undecodable bytes are replaced in text, never shift the byte span."""
    source = b'package p\n\n// Caf\xe9 doc.\nfunc F() string { return "\xff\xfe" }\n'
    (unit,) = parse(source).units
    assert unit.docstring == "// Caf\ufffd doc."
    assert (unit.start_byte, unit.end_byte) == (source.index(b"func"), len(source) - 1)
    assert unit.source == 'func F() string { return "\ufffd\ufffd" }'


def test_syntax_error_is_flagged_on_the_broken_unit_only() -> None:
    """One broken function does not hide or taint the next one."""
    result = parse(b"package p\n\nfunc A() { x := }\n\nfunc B() int { return 1 }\n")
    assert result.has_syntax_error
    assert [(u.name, u.quality.has_syntax_error) for u in result.units] == [
        ("A", True),
        ("B", False),
    ]


def test_truncated_file_flags_the_cut_off_unit() -> None:
    """A declaration whose body was cut off is kept and flagged."""
    result = parse(b"package p\n\n// Cut.\nfunc Cut(a int) int {\n\treturn a +")
    assert result.has_syntax_error
    (unit,) = result.units
    assert (unit.name, unit.docstring, unit.quality.has_syntax_error) == ("Cut", "// Cut.", True)


def test_unclosed_struct_is_flagged() -> None:
    """A type declaration missing its closing brace is flagged, never dropped silently."""
    result = parse(b"package p\n\ntype T struct {\n\ta int\n\nfunc G() {}\n")
    assert result.has_syntax_error
    assert result.units[0].name == "T"
    assert result.units[0].quality.has_syntax_error


@pytest.mark.parametrize(
    "source",
    [
        bytes(range(256)) * 4,
        b"\x00\x00package p\nfunc F() {}\n",
        b"\xef\xbb\xbfpackage p\n\nfunc F() {}\n",
        b"package p\nfunc (*) M() {}\nfunc () N() {}\nfunc",
        b"}}}{{{ type ( func ) ( \n\t`",
    ],
)
def test_garbage_never_raises(source: bytes) -> None:
    """Binary data, NUL bytes, a BOM and broken declarations parse without raising."""
    result = parse(source)
    for unit in result.units:
        assert 1 <= unit.start_line <= unit.end_line
        assert 0 <= unit.start_byte <= unit.end_byte <= len(source)


def test_mutated_fixture_keeps_span_invariants() -> None:
    """Randomly broken copies of a real file: no exception, spans always consistent."""
    original = (FIXTURES / "shapes.go").read_bytes()
    rng = random.Random(20240501)
    for _ in range(60):
        data = bytearray(original)
        for _ in range(rng.randint(1, 12)):
            at = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.4:
                del data[at : at + rng.randint(1, 30)]
            elif choice < 0.7:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            else:
                data[at:at] = rng.choice([b"{", b"}", b"(", b"func ", b"type (", b"/*", b"`"])
        source = bytes(data)
        for unit in parse(source).units:
            span = source[unit.start_byte : unit.end_byte]
            assert unit.source == span.decode("utf-8", errors="replace")
            assert source.count(b"\n", 0, unit.start_byte) + 1 == unit.start_line
            assert unit.end_line == unit.start_line + span.rstrip(b"\n").count(b"\n")

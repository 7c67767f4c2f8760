"""forge-go: the exact units mined from the fixture files."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.contracts import CodeUnit, ParseRequest, ParseResult, UnitKind
from forge_go.parser import parse_go

FIXTURES = Path(__file__).parent / "fixtures"
FUNCTION, METHOD, TYPE = UnitKind.FUNCTION, UnitKind.METHOD, UnitKind.TYPE
DESCRIBE_DOC = "/* Describe formats a shape with its area. */"
SHAPES_IMPORTS = ["fmt", "strings", "str", "github.com/example/go-geom/v2", "geom"]


def parse_fixture(name: str, path: str | None = None) -> ParseResult:
    """Parse a fixture file as if it lived at ``path`` in a repository."""
    source = (FIXTURES / name).read_bytes()
    return parse_go(ParseRequest(path=path or f"pkg/shapes/{name}", language="go", source=source))


def by_qualified_name(result: ParseResult) -> dict[str, CodeUnit]:
    """The units of a result, keyed by qualified name."""
    return {unit.qualified_name: unit for unit in result.units}


@pytest.fixture(scope="module")
def shapes() -> ParseResult:
    """The parsed ``shapes.go`` fixture."""
    return parse_fixture("shapes.go")


# kind, name, qualified name, start line, end line, parent, docstring
SHAPES_UNITS: list[tuple[UnitKind, str, str, int, int, str | None, str | None]] = [
    (
        FUNCTION,
        "Area",
        "Area",
        16,
        18,
        None,
        "// Area returns the area of a rectangle.\n// It is documented on two lines.",
    ),
    (FUNCTION, "Map", "Map", 21, 27, None, "// Map applies f to every element of xs."),
    (
        FUNCTION,
        "Describe",
        "Describe",
        30,
        32,
        None,
        "/* Describe formats a shape with its area. */",
    ),
    (FUNCTION, "undocumented", "undocumented", 36, 36, None, None),
    (TYPE, "Rect", "Rect", 39, 42, None, "// Rect is a rectangle."),
    (METHOD, "Area", "Rect.Area", 45, 45, "Rect", "// Area is the rectangle's area."),
    (METHOD, "Scale", "(*Rect).Scale", 48, 51, "Rect", "// Scale grows the rectangle in place."),
    (TYPE, "Shape", "Shape", 54, 57, None, "// Shape is anything with an area."),
    (TYPE, "List", "List", 60, 62, None, "// List is a generic list."),
    (METHOD, "Push", "(*List).Push", 65, 67, "List", "// Push appends v."),
    (METHOD, "Len", "List.Len", 69, 69, "List", None),
    (TYPE, "Point", "Point", 74, 74, None, "// Point is a point in the plane."),
    (
        TYPE,
        "Polygon",
        "Polygon",
        79,
        79,
        None,
        "/*\n\t   Polygon is a closed chain of points.\n\t*/",
    ),
    (TYPE, "Celsius", "Celsius", 81, 81, None, None),
    (TYPE, "Handler", "Handler", 82, 82, None, None),
    (TYPE, "Meters", "Meters", 86, 86, None, "// Meters is an alias."),
    (FUNCTION, "directiveOnly", "directiveOnly", 89, 89, None, None),
    (FUNCTION, "Sum", "Sum", 94, 101, None, "// Sum adds numbers.\n//\n//go:noinline"),
    (TYPE, "Number", "Number", 104, 106, None, "// Number is a numeric constraint."),
    (FUNCTION, "nanotime", "nanotime", 110, 110, None, None),
]


def test_shapes_gives_exactly_the_expected_units(shapes: ParseResult) -> None:
    """Every function, method and type spec, in file order, with spans, parents and docs."""
    got = [
        (u.kind, u.name, u.qualified_name, u.start_line, u.end_line, u.parent, u.docstring)
        for u in shapes.units
    ]
    assert got == SHAPES_UNITS
    assert all(
        unit.language == "go" and unit.path == "pkg/shapes/shapes.go" for unit in shapes.units
    )
    assert all(unit.leading_comment is None for unit in shapes.units)
    assert shapes.imports == ["fmt", "strings", "github.com/example/go-geom/v2"]
    assert not shapes.has_syntax_error


@pytest.mark.parametrize(
    ("qualified_name", "signature"),
    [
        ("Area", "func Area(w, h float64) float64"),
        ("Map", "func Map[T, U any](xs []T, f func(T) U) []U"),
        ("Sum", "func Sum[N Number](\n\txs ...N,\n) (total N)"),
        ("nanotime", "func nanotime() int64"),
        ("Rect.Area", "func (r Rect) Area() float64"),
        ("(*List).Push", "func (l *List[T]) Push(v T)"),
        ("Rect", "type Rect struct"),
        ("Shape", "type Shape interface"),
        ("List", "type List[T any] struct"),
        ("Point", "type Point struct"),
        ("Polygon", "type Polygon []Point"),
        ("Handler", "type Handler func(Shape) error"),
        ("Meters", "type Meters = float64"),
    ],
)
def test_signature(shapes: ParseResult, qualified_name: str, signature: str) -> None:
    """The declaration up to the body's ``{``; grouped specs get their ``type`` keyword back."""
    assert by_qualified_name(shapes)[qualified_name].signature == signature


def test_spans_are_the_original_bytes_and_exclude_the_doc_comment(shapes: ParseResult) -> None:
    """Source is the span's bytes; a unit starts at func/type (a grouped spec at its name)."""
    data = (FIXTURES / "shapes.go").read_bytes()
    lines = data.decode().splitlines()
    for unit in shapes.units:
        assert unit.source == data[unit.start_byte : unit.end_byte].decode()
        assert data.count(b"\n", 0, unit.start_byte) + 1 == unit.start_line
        assert unit.source.splitlines()[-1] in lines[unit.end_line - 1]
        assert unit.quality.lines == unit.end_line - unit.start_line + 1
        assert unit.quality.has_doc == (unit.docstring is not None)
        assert not unit.source.lstrip().startswith(("//", "/*"))
    units = by_qualified_name(shapes)
    assert units["Rect"].source.startswith("type Rect struct {")
    assert units["Point"].source == "Point struct{ X, Y float64 }"
    assert units["(*Rect).Scale"].source == (
        "func (r *Rect) Scale(k float64) {\n\tr.W *= k\n\tr.H *= k\n}"
    )


def test_references_are_calls_selectors_and_imports_in_order(shapes: ParseResult) -> None:
    """Called names, selected names, qualified types, then every import path and name."""
    units = by_qualified_name(shapes)
    assert units["Describe"].references == [
        "fmt",
        "Sprintf",
        "str",
        "ToUpper",
        "s",
        "Name",
        "Area",
        "strings",
        "github.com/example/go-geom/v2",
        "geom",
    ]
    assert units["Map"].references == ["make", "len", "append", "f", *SHAPES_IMPORTS]
    assert units["undocumented"].references == ["Map", *SHAPES_IMPORTS]
    assert units["(*Rect).Scale"].references == ["W", "H", *SHAPES_IMPORTS]
    # A type refers to the qualified types of its fields: geom.Point.
    assert units["Rect"].references == ["geom", "Point", *SHAPES_IMPORTS[:-1]]
    assert units["Shape"].references == SHAPES_IMPORTS


def test_quality_flags_of_an_ordinary_file(shapes: ParseResult) -> None:
    """A hand-written, non-test, well-formed file has no quality flag set."""
    for unit in shapes.units:
        assert not unit.quality.is_test
        assert not unit.quality.looks_generated
        assert not unit.quality.has_syntax_error
        assert unit.content_hash and len(unit.content_hash) == 64


def test_generated_file_is_flagged() -> None:
    """The `// Code generated ... DO NOT EDIT.` header marks every unit as generated."""
    result = parse_fixture("zz_generated.go")
    got = [(u.kind, u.qualified_name, u.start_line, u.end_line, u.docstring) for u in result.units]
    assert got == [
        (TYPE, "Color", 8, 8, "// Color is a color."),
        (METHOD, "Color.String", 10, 12, None),
    ]
    assert all(unit.quality.looks_generated for unit in result.units)
    assert result.imports == ["strconv"]
    assert by_qualified_name(result)["Color.String"].references == [
        "strconv",
        "FormatInt",
        "int64",
    ]


def test_test_file_units_are_test_code() -> None:
    """Tests, benchmarks, examples and helpers of a `_test.go` file are all test code."""
    result = parse_fixture("shapes_test.go")
    got = [(u.kind, u.qualified_name, u.start_line, u.end_line) for u in result.units]
    assert got == [
        (FUNCTION, "TestArea", 5, 9),
        (FUNCTION, "BenchmarkArea", 11, 15),
        (FUNCTION, "ExampleArea", 17, 20),
        (FUNCTION, "newRect", 22, 22),
    ]
    assert all(unit.quality.is_test for unit in result.units)
    assert by_qualified_name(result)["TestArea"].references == [
        "testing",
        "T",
        "Area",
        "t",
        "Fatal",
    ]
    assert by_qualified_name(result)["TestArea"].signature == "func TestArea(t *testing.T)"


def test_same_file_outside_a_test_path_is_not_test_code() -> None:
    """Test-ness comes from the path, not from the function names."""
    result = parse_fixture("shapes_test.go", path="pkg/shapes/examples.go")
    assert not any(unit.quality.is_test for unit in result.units)

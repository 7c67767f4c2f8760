"""forge-python: the exact units of a hand-written file covering every form, and bad input."""

from __future__ import annotations

import ast

from forge_core.contracts import CodeUnit, UnitKind
from forge_python.astref import ast_units, parser_units
from forge_python.parser import parse_source

FIXTURE = '''\
"""Module docstring."""
import os
from collections import OrderedDict as OD, defaultdict
from . import sibling


# A helper that adds.
# Second comment line.
def add(a, b):
    """Add two numbers.

    Args:
        a: first.
    """
    return helper(a) + os.path.join(b)


@decorator
@other.decorator(flag=True)
async def fetch(
    url: str,
    timeout: float = 1.0,
) -> bytes:
    return await client.get(url)


class Outer(Base, metaclass=Meta):
    """Outer class."""

    # comment above method
    def method(self):
        def inner():  # nested function: part of method
            return 1
        return inner()

    @property
    def value(self) -> int:
        return self._value

    class Inner:
        def deep(self):
            r"raw \\d docstring"
            pass

    if TYPE_CHECKING:
        def typed(self) -> None: ...


try:
    from fast import speedup
except ImportError:
    def speedup(x):
        return x
    # trailing comment, not part of speedup


def test_something():
    f"not a docstring {add}"
    assert add(1, 2) == 3
'''

IMPORTS = ["os", "collections", "OrderedDict", "defaultdict", "sibling", "fast", "speedup"]

# kind, qualified name, parent, start line, end line, docstring, leading comment, signature
EXPECTED = [
    (
        UnitKind.FUNCTION,
        "add",
        None,
        9,
        15,
        "Add two numbers.\n\nArgs:\n    a: first.",
        "# A helper that adds.\n# Second comment line.",
        "def add(a, b):",
    ),
    (
        UnitKind.FUNCTION,
        "fetch",
        None,
        18,
        24,
        None,
        None,
        "async def fetch(\n    url: str,\n    timeout: float = 1.0,\n) -> bytes:",
    ),
    (
        UnitKind.CLASS,
        "Outer",
        None,
        27,
        46,
        "Outer class.",
        None,
        "class Outer(Base, metaclass=Meta):",
    ),
    (
        UnitKind.METHOD,
        "Outer.method",
        "Outer",
        31,
        34,
        None,
        "# comment above method",
        "def method(self):",
    ),
    (UnitKind.METHOD, "Outer.value", "Outer", 36, 38, None, None, "def value(self) -> int:"),
    (UnitKind.CLASS, "Outer.Inner", "Outer", 40, 43, None, None, "class Inner:"),
    (
        UnitKind.METHOD,
        "Outer.Inner.deep",
        "Outer.Inner",
        41,
        43,
        "raw \\d docstring",
        None,
        "def deep(self):",
    ),
    (
        UnitKind.METHOD,
        "Outer.typed",
        "Outer",
        46,
        46,
        None,
        None,
        "def typed(self) -> None:",
    ),
    (UnitKind.FUNCTION, "speedup", None, 52, 53, None, None, "def speedup(x):"),
    (UnitKind.FUNCTION, "test_something", None, 57, 59, None, None, "def test_something():"),
]


def _facts(unit: CodeUnit) -> tuple[object, ...]:
    return (
        unit.kind,
        unit.qualified_name,
        unit.parent,
        unit.start_line,
        unit.end_line,
        unit.docstring,
        unit.leading_comment,
        unit.signature,
    )


def _by_name(source: bytes, path: str = "pkg/mod.py") -> dict[str, CodeUnit]:
    return {unit.qualified_name: unit for unit in parse_source(path, source).units}


def test_fixture_units_are_exactly_the_expected_ones() -> None:
    """Every form: decorators, async, nested class, methods, comments, docstrings, `if`/`try`."""
    result = parse_source("pkg/mod.py", FIXTURE.encode())
    assert [_facts(unit) for unit in result.units] == EXPECTED
    assert result.imports == IMPORTS
    assert not result.has_syntax_error


def test_fixture_agrees_with_ast() -> None:
    """The expectations above are also what the stdlib `ast` module says."""
    data = FIXTURE.encode()
    assert parser_units(parse_source("pkg/mod.py", data)) == ast_units(data)
    functions = [n for n in ast.walk(ast.parse(data)) if isinstance(n, ast.AsyncFunctionDef)]
    assert [f.name for f in functions] == ["fetch"]


def test_source_and_byte_span_cut_the_original_bytes() -> None:
    """`source` is the unit's bytes, decorators included, and its hash is filled."""
    data = FIXTURE.encode()
    for unit in parse_source("pkg/mod.py", data).units:
        assert unit.source == data[unit.start_byte : unit.end_byte].decode()
        assert unit.content_hash
        assert unit.quality.lines == unit.end_line - unit.start_line + 1
    units = _by_name(data)
    assert units["fetch"].source.startswith("@decorator\n@other.decorator(flag=True)\nasync def")
    assert "def inner():" in units["Outer.method"].source
    assert "inner" not in {u.name for u in units.values()}
    assert units["speedup"].source == "def speedup(x):\n        return x"


def test_references_are_calls_attributes_then_imports() -> None:
    """Names in order of appearance (distinct), followed by the file's imports."""
    units = _by_name(FIXTURE.encode())
    assert units["add"].references == ["helper", "path", "join", *IMPORTS]
    assert units["fetch"].references == ["decorator", "get", *IMPORTS]
    assert units["Outer"].references[:4] == ["Base", "inner", "property", "_value"]


def test_an_imported_name_a_unit_uses_is_listed_once_where_it_is_used() -> None:
    source = b"import os\nfrom json import dumps, loads\n\ndef save(x):\n    return dumps(os.sep)\n"
    (unit,) = parse_source("pkg/save.py", source).units
    assert unit.references == ["dumps", "sep", "os", "json", "loads"]


def test_quality_signals() -> None:
    """has_doc, is_test, lines; a test path makes every unit test code."""
    units = _by_name(FIXTURE.encode())
    assert units["add"].quality.has_doc and not units["fetch"].quality.has_doc
    assert units["test_something"].quality.is_test and not units["add"].quality.is_test
    assert not any(u.quality.looks_generated or u.quality.has_syntax_error for u in units.values())
    in_tests = _by_name(FIXTURE.encode(), path="tests/test_mod.py")
    assert all(unit.quality.is_test for unit in in_tests.values())
    test_class = _by_name(b"class TestThing:\n    def helper(self):\n        pass\n")
    assert test_class["TestThing"].quality.is_test
    assert test_class["TestThing.helper"].quality.is_test


def test_generated_file_is_flagged() -> None:
    """A generated-code header marks every unit."""
    units = _by_name(b"# Code generated by protoc. DO NOT EDIT.\ndef f():\n    pass\n")
    assert units["f"].quality.looks_generated


def test_syntax_errors_keep_the_units_found_and_flag_them() -> None:
    """A broken function is flagged; the file's intact units come back clean."""
    source = b"def good():\n    return 1\n\ndef broken(:\n    pass\n\nclass Fine:\n"
    source += b"    def ok(self):\n        return 2\n"
    result = parse_source("bad.py", source)
    assert result.has_syntax_error
    units = {u.qualified_name: u for u in result.units}
    assert set(units) == {"good", "broken", "Fine", "Fine.ok"}
    assert units["broken"].quality.has_syntax_error
    assert not units["good"].quality.has_syntax_error
    assert (units["Fine.ok"].start_line, units["Fine.ok"].end_line) == (8, 9)


def test_invalid_utf8_does_not_crash() -> None:
    """Undecodable bytes are replaced in text fields; byte offsets stay exact."""
    source = b"def f(\xff):\n    '''caf\xe9 \xfe'''\n    return 1\n"
    result = parse_source("weird.py", source)
    (unit,) = result.units
    assert unit.docstring == "caf\ufffd \ufffd"
    assert (unit.start_byte, unit.end_byte) == (0, len(source) - 1)
    assert unit.source == source[:-1].decode("utf-8", errors="replace")


def test_coding_cookie_decodes_text_fields() -> None:
    """A PEP 263 cookie names the encoding of the file's text (as `ast` reads it)."""
    source = "# -*- coding: latin-1 -*-\ndef f():\n    '''café'''\n".encode("latin-1")
    (unit,) = parse_source("legacy.py", source).units
    assert unit.docstring == "café" == ast.get_docstring(ast.parse(source).body[0])  # type: ignore[arg-type]


def test_byte_order_mark_is_not_text() -> None:
    """A UTF-8 BOM does not leak into the first unit or its comment."""
    source = b"\xef\xbb\xbf# first\ndef f():\n    pass\n"
    (unit,) = parse_source("bom.py", source).units
    assert (unit.start_line, unit.start_byte, unit.leading_comment) == (2, 11, "# first")


def test_dedented_continuation_inside_brackets_parses_cleanly() -> None:
    """tree-sitter-python#256 is worked around: valid Python never turns into ERROR nodes."""
    source = (
        b"class A:\n"
        b"    def f(self):\n"
        b"        total = (1 +  # a comment\n"
        b"2)\n"
        b"        return total\n"
        b"\n"
        b"    def g(self):\n"
        b"        return 2\n"
    )
    result = parse_source("wrapped.py", source)
    assert not result.has_syntax_error
    assert parser_units(result) == ast_units(source)
    units = {u.qualified_name: u for u in result.units}
    start, end = source.index(b"def f"), source.index(b"total\n\n") + len(b"total")
    assert (units["A.f"].start_byte, units["A.f"].end_byte) == (start, end)
    assert (units["A.f"].start_line, units["A.f"].end_line) == (2, 5)
    assert "(1 +  # a comment\n2)" in units["A.f"].source  # cut from the original bytes


def test_empty_and_comment_only_files_have_no_units() -> None:
    """Nothing to mine is an empty result, not an error."""
    for source in (b"", b"# only a comment\n", b"x = 1\n"):
        result = parse_source("empty.py", source)
        assert result.units == [] and not result.has_syntax_error

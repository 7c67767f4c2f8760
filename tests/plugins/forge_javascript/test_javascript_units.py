"""The units mined from each fixture: every JavaScript form, named and spanned exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.contracts import CodeUnit, ParseResult, UnitKind
from forge_javascript.parser import parse_javascript

FIXTURES = Path(__file__).parent / "fixtures"
F, M, C = UnitKind.FUNCTION, UnitKind.METHOD, UnitKind.CLASS

Row = tuple[UnitKind, str, str, int, int, str | None]


def parse_fixture(name: str) -> ParseResult:
    """Parse a fixture file as the mine stage would."""
    return parse_javascript(f"src/{name}", (FIXTURES / name).read_bytes())


def rows(result: ParseResult) -> list[Row]:
    """(kind, name, qualified name, start line, end line, parent) of each unit."""
    return [
        (u.kind, u.name, u.qualified_name, u.start_line, u.end_line, u.parent) for u in result.units
    ]


def unit(result: ParseResult, qualified_name: str, index: int = 0) -> CodeUnit:
    """The ``index``-th unit with that qualified name."""
    return [u for u in result.units if u.qualified_name == qualified_name][index]


EXPECTED: dict[str, list[Row]] = {
    "declarations.js": [
        (F, "add", "add", 8, 14, None),
        (F, "counter", "counter", 18, 21, None),
        (F, "fetchJson", "fetchJson", 23, 26, None),
        (F, "pages", "pages", 28, 30, None),
        (C, "Stack", "Stack", 33, 67, None),
        (M, "constructor", "Stack.constructor", 36, 39, "Stack"),
        (M, "top", "Stack.top", 42, 44, "Stack"),
        (M, "top", "Stack.top", 46, 48, "Stack"),
        (M, "from", "Stack.from", 50, 52, "Stack"),
        (M, "onClick", "Stack.onClick", 54, 56, "Stack"),
        (M, "format", "Stack.format", 58, 60, "Stack"),
        (M, "#hidden", "Stack.#hidden", 62, 64, "Stack"),
        (M, "[Symbol.asyncIterator]", "Stack.[Symbol.asyncIterator]", 66, 66, "Stack"),
        (C, "Queue", "Queue", 69, 73, None),
        (M, "push", "Queue.push", 70, 72, "Queue"),
    ],
    "bindings.js": [
        (F, "double", "double", 4, 4, None),
        (F, "greet", "greet", 7, 9, None),
        (F, "first", "first", 11, 11, None),
        (F, "last", "last", 11, 13, None),
        (F, "parse", "exports.parse", 15, 17, None),
        (F, "render", "module.exports.render", 19, 21, None),
        (F, "start", "module.exports.start", 24, 26, None),
        (F, "stop", "module.exports.stop", 27, 27, None),
        (F, "reset", "module.exports.reset", 28, 28, None),
        (F, "quoted-key", "module.exports.quoted-key", 29, 29, None),
        (F, "deep", "module.exports.nested.deep", 31, 31, None),
        (F, "get", "api.get", 37, 37, None),
        (F, "hidden", "hidden", 42, 44, None),
    ],
    "module.mjs": [
        (F, "load", "load", 10, 12, None),
        (F, "main", "main", 15, 17, None),
        (F, "size", "size", 19, 19, None),
        (C, "Store", "Store", 21, 25, None),
        (M, "keys", "Store.keys", 22, 24, "Store"),
        (F, "lazy", "lazy", 27, 27, None),
    ],
    "legacy.cjs": [
        (F, "Timer", "Timer", 4, 7, None),
        (F, "start", "Timer.prototype.start", 9, 11, None),
        (F, "exports", "module.exports", 13, 15, None),
    ],
    "component.jsx": [
        (F, "App", "App", 5, 12, None),
        (F, "Card", "Card", 14, 16, None),
        (C, "Counter", "Counter", 18, 22, None),
        (M, "render", "Counter.render", 19, 21, "Counter"),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_units_are_exact(name: str) -> None:
    result = parse_fixture(name)
    assert rows(result) == EXPECTED[name]
    assert not result.has_syntax_error
    for code_unit in result.units:
        assert code_unit.language == "javascript" and code_unit.path == f"src/{name}"
        assert code_unit.quality.lines == code_unit.end_line - code_unit.start_line + 1
        assert not code_unit.quality.has_syntax_error and not code_unit.quality.looks_generated


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spans_are_the_original_bytes(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    for code_unit in parse_fixture(name).units:
        assert data[code_unit.start_byte : code_unit.end_byte].decode() == code_unit.source
        assert data[: code_unit.start_byte].count(b"\n") + 1 == code_unit.start_line


def test_declarations_docstrings_comments_and_signatures() -> None:
    result = parse_fixture("declarations.js")
    add = unit(result, "add")
    assert add.docstring == (
        "/**\n * Add two numbers.\n * @param {number} a\n * @param {number} b\n */"
    )
    assert add.quality.has_doc and add.leading_comment is None
    assert add.source.startswith("function add(a, b) {") and "function twice" in add.source
    assert add.references == ["twice", "max"]
    counter = unit(result, "counter")
    assert counter.docstring is None and not counter.quality.has_doc
    assert counter.leading_comment == "// Count upwards forever.\n// Second comment line."
    assert counter.signature == "function* counter(start)"
    assert unit(result, "fetchJson").signature == "async function fetchJson(url)"
    assert unit(result, "pages").signature == "async function* pages(client)"
    stack = unit(result, "Stack")
    assert stack.docstring == "/** A stack of items. */"
    assert stack.signature == "class Stack extends Array"
    getter, setter = unit(result, "Stack.top"), unit(result, "Stack.top", 1)
    assert getter.signature == "get top()" and getter.docstring == "/** The top item. */"
    assert setter.signature == "set top(value)" and setter.docstring is None
    assert unit(result, "Stack.from").signature == "static from(list)"
    assert unit(result, "Stack.onClick").signature == "onClick = (event) =>"
    assert unit(result, "Stack.onClick").references == ["handle", "target"]
    assert unit(result, "Stack.format").signature == "format = function (item)"
    assert unit(result, "Stack.#hidden").references == ["#secret"]
    assert unit(result, "Queue").signature == "const Queue = class Inner"


def test_bindings_names_signatures_and_references() -> None:
    result = parse_fixture("bindings.js")
    assert result.imports == ["util", "path"]
    assert unit(result, "double").signature == "const double = (x) =>"
    assert unit(result, "double").source == "const double = (x) => x * 2;"
    greet = unit(result, "greet")
    assert greet.signature == "let greet = function hello(name)"
    assert greet.docstring == "/** Greets someone. */"
    assert greet.references == ["format", "util", "path"]
    assert unit(result, "first").source == "first = function () {}"
    assert unit(result, "exports.parse").signature == "exports.parse = function (text)"
    assert unit(result, "module.exports.render").references == ["draw", "util", "path"]
    assert unit(result, "module.exports.start").signature == "start()"
    assert unit(result, "module.exports.stop").signature == "stop: () =>"
    hidden = unit(result, "hidden")
    assert hidden.leading_comment == "// IIFE wrappers are searched for units"


def test_es_module_imports_exports_and_docstrings() -> None:
    result = parse_fixture("module.mjs")
    assert result.imports == [
        "node:fs",
        "fs",
        "readFile",
        "stat",
        "node:path",
        "path",
        "./side-effect.js",
        "./helper.mjs",
        "helper",
        "./all.mjs",
        "./lazy.mjs",
    ]
    load = unit(result, "load")
    assert load.source.startswith("export function load(name) {")
    assert load.docstring == "/**\n * Load a file.\n */"
    assert load.signature == "export function load(name)"
    assert load.references[:2] == ["read", "join"]
    assert load.references[2:] == [i for i in result.imports if i not in ("read", "join")]
    main = unit(result, "main")
    assert main.signature == "export default function main()"
    assert main.docstring == "/** The default export. */"
    assert main.references[:3] == ["load", "then", "trim"]
    assert unit(result, "size").signature == "export const size = async (name) =>"
    assert unit(result, "Store").signature == "export class Store"


def test_import_forms_record_imported_names_not_aliases() -> None:
    source = (
        b"import D, * as N from 'z';\n"
        b"export { a as b, c } from 'x';\n"
        b"export * as ns from 'y';\n"
        b"const { join } = require('path'), lib = require(`lib`), no = require(name);\n"
        b"function f() { return import('late').then(() => require('inner')); }\n"
    )
    result = parse_javascript("a.mjs", source)
    assert result.imports == [
        "z",
        "D",
        "N",
        "x",
        "a",
        "c",
        "y",
        "ns",
        "path",
        "lib",
        "late",
        "inner",
    ]
    assert result.units[0].references == ["then", *result.imports]


def test_commonjs_module() -> None:
    result = parse_fixture("legacy.cjs")
    assert result.imports == ["events"]
    assert unit(result, "Timer").leading_comment is None  # a blank line separates them
    start = unit(result, "Timer.prototype.start")
    assert start.references == ["setTimeout", "emit", "delay", "events"]
    exported = unit(result, "module.exports")
    assert exported.signature == "module.exports = function createTimer(delay)"
    assert exported.references == ["Timer", "events"]


def test_jsx_components() -> None:
    result = parse_fixture("component.jsx")
    assert result.imports == ["react", "React", "./button", "Button"]
    app = unit(result, "App")
    assert app.docstring == "/** The whole application. */"
    assert app.references[:4] == ["Button", "alert", "name", "Card"]
    assert unit(result, "Card").signature == "const Card = ({ title }) =>"
    assert unit(result, "Counter").signature == "class Counter extends React.Component"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("export default function () {}", [(F, "default", "default", 1, 1, None)]),
        ("export default async () => 1;", [(F, "default", "default", 1, 1, None)]),
        (
            "export default class {\n  run() {}\n}",
            [(C, "default", "default", 1, 3, None), (M, "run", "default.run", 2, 2, "default")],
        ),
        (
            "export default {\n  a() {},\n  b: () => 1,\n  c: 2,\n};",
            [(F, "a", "default.a", 2, 2, None), (F, "b", "default.b", 3, 3, None)],
        ),
        ("f = function () {};", [(F, "f", "f", 1, 1, None)]),
        ("const g = function* () {};", [(F, "g", "g", 1, 1, None)]),
        ("function outer() {\n  const inner = () => 1;\n}", [(F, "outer", "outer", 1, 3, None)]),
        ("const x = 1, y = [1, 2];\nobj[key] = () => 1;", []),
        ("setup(function named() {});", []),
    ],
)
def test_small_forms(source: str, expected: list[Row]) -> None:
    assert rows(parse_javascript("a.js", source.encode())) == expected


def test_decorators_are_part_of_the_unit() -> None:
    result = parse_javascript("a.js", b"@sealed\nclass A {\n  @log\n  run() {}\n}\n")
    assert rows(result) == [(C, "A", "A", 1, 5, None), (M, "run", "A.run", 3, 4, "A")]
    assert unit(result, "A").signature == "@sealed\nclass A"


def test_test_paths_are_flagged() -> None:
    source = b"function helper() {}\n"
    assert parse_javascript("src/__tests__/a.js", source).units[0].quality.is_test
    assert parse_javascript("src/a.test.js", source).units[0].quality.is_test
    assert not parse_javascript("src/a.js", source).units[0].quality.is_test


def test_jsdoc_must_touch_the_unit() -> None:
    source = b"/** File header. */\n\nfunction f() {}\n/* plain */\nfunction g() {}\n"
    f, g = parse_javascript("a.js", source).units
    assert f.docstring is None and g.docstring is None
    assert f.leading_comment is None and g.leading_comment is None

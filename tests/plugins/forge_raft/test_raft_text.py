"""Reading code text: signatures, documentation, stubs and re-indentation."""

from __future__ import annotations

import ast

import pytest
from raft_corpus import mine, synthesize

from forge_core.contracts import CodeUnit, UnitKind, UnitQuality
from forge_raft.calls import code_view
from forge_raft.code import (
    clean_documentation,
    first_sentence,
    locate_lines,
    reindent,
    source_without_docstring,
    stub,
    summary,
)
from forge_raft.signatures import Parameter, parse_signature, split_top_level


def make_unit(
    language: str,
    signature: str,
    source: str,
    docstring: str | None = None,
    kind: UnitKind = UnitKind.FUNCTION,
) -> CodeUnit:
    """A unit built by hand, as a parser would fill it."""
    return CodeUnit(
        id="m::f",
        path="m",
        language=language,
        kind=kind,
        name="f",
        qualified_name="f",
        signature=signature,
        docstring=docstring,
        source=source,
        start_line=1,
        end_line=source.count("\n") + 1,
        start_byte=0,
        end_byte=len(source),
        quality=UnitQuality(lines=source.count("\n") + 1, has_doc=docstring is not None),
    )


def test_split_top_level_respects_brackets_and_strings() -> None:
    """Commas inside brackets, braces and strings do not split."""
    assert split_top_level('a: dict[str, int], b=", ", c=f(1, 2), {x, y}') == [
        "a: dict[str, int]",
        'b=", "',
        "c=f(1, 2)",
        "{x, y}",
    ]


@pytest.mark.parametrize(
    "signature",
    [
        "def f(a, b=1, *args, c, d=2, **kw) -> int:",
        "def f(a, /, b: 'x, y' = ', ', *, c: dict[str, list[int]] = {}) -> None:",
        "async def f(\n    a: int,  # the first\n    b: str = 'q',\n):",
        "def f(self, x=lambda y=1: y) -> tuple[int, ...]:",
        "def merge_sorted(left, right, key=lambda a, b: a < b):",
        "def f(\n    a,  # don't split here\n    b: int = 1,\n):",
        "def f(a, \\\n      b=1) \\\n        -> int:",
    ],
)
def test_python_parameters_match_ast(signature: str) -> None:
    """Names, defaults and result agree with Python's own parser."""
    parsed = parse_signature(make_unit("python", signature, signature + "\n    pass"))
    assert parsed is not None
    tree = ast.parse(signature + "\n    pass\n").body[0]
    arguments = tree.args  # type: ignore[attr-defined]
    names = [a.arg for a in arguments.posonlyargs + arguments.args]
    names += [arguments.vararg.arg] if arguments.vararg else []
    names += [a.arg for a in arguments.kwonlyargs]
    names += [arguments.kwarg.arg] if arguments.kwarg else []
    assert [p.name for p in parsed.parameters] == names
    returns = tree.returns  # type: ignore[attr-defined]
    assert (ast.unparse(returns) if returns else None) == (
        ast.unparse(ast.parse(parsed.returns).body[0]) if parsed.returns else None  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("signature", "parameters", "returns"),
    [
        (  # the lambda's own commas do not split the parameter list
            "def merge_sorted(left, right, key=lambda a, b: a < b):",
            [Parameter("left"), Parameter("right"), Parameter("key", default="lambda a, b: a < b")],
            None,
        ),
        (
            "async def f(x, *, key: Callable[[int, int], bool] = lambda a, b: a < b) -> None:",
            [
                Parameter("x"),
                Parameter(
                    "key", "Callable[[int, int], bool]", "lambda a, b: a < b", "keyword-only"
                ),
            ],
            "None",
        ),
        (  # a comment with a quote or a colon is no parameter
            'def f(\n    a,  # don\'t: split\n    b: int = 1,  # the "b"\n) -> str:',
            [Parameter("a"), Parameter("b", "int", "1")],
            "str",
        ),
        (  # grouping brackets and inner line breaks stay as written
            "def f(a=(1), b: (int) = (\n    2\n), c=(1, 2)) -> (str):",
            [
                Parameter("a", default="(1)"),
                Parameter("b", "(int)", "(\n    2\n)"),
                Parameter("c", default="(1, 2)"),
            ],
            "(str)",
        ),
        (  # a backslash continuation is no part of a name or a result
            "def f(a, \\\n      b=1) \\\n        -> int:",
            [Parameter("a"), Parameter("b", default="1")],
            "int",
        ),
        (  # non-ASCII text: the parser counts bytes, the texts are characters
            'def f(名前: str = "é", *rest: 型, **kw: int) -> "Ü":',
            [
                Parameter("名前", "str", '"é"'),
                Parameter("rest", "型", kind="variadic"),
                Parameter("kw", "int", kind="variadic keyword"),
            ],
            '"Ü"',
        ),
        (  # only \n, \r\n and \r end a line for the parser
            'def f(a,\x0c b="\u2028",\r c=2):',
            [Parameter("a"), Parameter("b", default='"\u2028"'), Parameter("c", default="2")],
            None,
        ),
        (  # Python 2 (an old octal literal) does not parse: the text splitter reads it
            "def f(self, mode=0777, *args):",
            [
                Parameter("self"),
                Parameter("mode", default="0777"),
                Parameter("args", kind="variadic"),
            ],
            None,
        ),
    ],
)
def test_python_parameters_as_written(
    signature: str, parameters: list[Parameter], returns: str | None
) -> None:
    """Names, types, defaults and kinds, with their source text."""
    parsed = parse_signature(make_unit("python", signature, signature + " pass"))
    assert parsed is not None
    assert list(parsed.parameters) == parameters
    assert parsed.returns == returns


def test_lambda_default_answer_invents_no_parameter() -> None:
    """The `parameters` answer names the three parameters, the lambda whole."""
    source = b'''def merge_sorted(left, right, key=lambda a, b: a < b):
    """Merge two sorted lists."""
    return sorted(left + right)
'''
    units = mine([("pkg/merge.py", "python", source)])
    examples = synthesize(units, question_types=["parameters"], oracle_probability=1.0)
    assert [e.final_answer for e in examples] == [
        "`merge_sorted` takes `left`, `right` and `key` (default `lambda a, b: a < b`); "
        "no return type is declared."
    ]


def test_python_type_parameters() -> None:
    """PEP 695 type parameters (newer than this Python's ast) are skipped over."""
    parsed = parse_signature(make_unit("python", "def f[T](xs: list[T]) -> T:", "..."))
    assert parsed is not None
    assert [(p.name, p.type) for p in parsed.parameters] == [("xs", "list[T]")]
    assert parsed.returns == "T"


def test_python_parameter_kinds() -> None:
    """Positional-only, keyword-only and variadic parameters are told apart."""
    parsed = parse_signature(
        make_unit("python", "def f(a, /, b, *c, d=1, **e):", "def f(a, /, b, *c, d=1, **e): pass")
    )
    assert parsed is not None
    assert parsed.parameters == (
        Parameter("a", kind="positional-only"),
        Parameter("b"),
        Parameter("c", kind="variadic"),
        Parameter("d", default="1", kind="keyword-only"),
        Parameter("e", kind="variadic keyword"),
    )


@pytest.mark.parametrize(
    ("signature", "names", "returns"),
    [
        ("function add(a, b = [1, 2], ...rest)", ["a", "b", "rest"], None),
        ("const double = (x) =>", ["x"], None),
        ("handler = event =>", ["event"], None),
        (
            "export default function App({ user, id }, [first] = [])",
            ["{ user, id }", "[first]"],
            None,
        ),
        ("'quoted-key': (x) =>", ["x"], None),
        ("get top()", [], None),
    ],
)
def test_javascript_parameters(signature: str, names: list[str], returns: str | None) -> None:
    """Defaults, rest parameters, destructuring and arrow functions."""
    parsed = parse_signature(make_unit("javascript", signature, signature + " {}"))
    assert parsed is not None
    assert [p.name for p in parsed.parameters] == names
    assert parsed.returns == returns


def test_javascript_types_come_from_jsdoc() -> None:
    """`@param {T} name` and `@returns {T}`, nested braces included."""
    doc = (
        "/**\n * Do it.\n * @param {Object<string, {a: number}>} opts\n"
        " * @returns {Promise<void>}\n */"
    )
    parsed = parse_signature(
        make_unit("javascript", "function f(opts)", "function f(opts) {}", doc)
    )
    assert parsed is not None
    assert parsed.parameters == (Parameter("opts", "Object<string, {a: number}>"),)
    assert parsed.returns == "Promise<void>"


@pytest.mark.parametrize(
    ("signature", "parameters", "returns"),
    [
        ("func Area(w, h float64) float64", [("w", "float64"), ("h", "float64")], "float64"),
        ("func (r *Rect) Scale(k float64)", [("k", "float64")], None),
        ("func Map[T, U any](xs []T, f func(T) U) []U", [("xs", "[]T"), ("f", "func(T) U")], "[]U"),
        ("func Sum[N Number](\n\txs ...N,\n) (total N)", [("xs", "...N")], "total N"),
        ("func Pair() (int, error)", [], "int, error"),
        ("func Anon(int, chan string)", [("", "int"), ("", "chan string")], None),
    ],
)
def test_go_parameters(
    signature: str, parameters: list[tuple[str, str]], returns: str | None
) -> None:
    """Receivers, grouped names, type parameters, variadics, named and unnamed results."""
    parsed = parse_signature(make_unit("go", signature, signature + " {}"))
    assert parsed is not None
    assert [(p.name, p.type) for p in parsed.parameters] == parameters
    assert parsed.returns == returns


def test_classes_have_no_parameter_list() -> None:
    """Only functions and methods are asked about their parameters."""
    unit = make_unit("python", "class A(B):", "class A(B):\n    pass", kind=UnitKind.CLASS)
    assert parse_signature(unit) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("// Area returns the area.\n// Second line.", "Area returns the area.\nSecond line."),
        ("// Sum adds numbers.\n//\n//go:noinline", "Sum adds numbers."),
        (
            "/**\n * Add two numbers.\n * @param {number} a\n */",
            "Add two numbers.\n@param {number} a",
        ),
        ("/* Describe a shape. */", "Describe a shape."),
        ("# A comment block.", "A comment block."),
        ("Already clean.\n\nMore.", "Already clean.\n\nMore."),
    ],
)
def test_clean_documentation(raw: str, clean: str) -> None:
    """Comment markers and Go directives go; the words stay."""
    assert clean_documentation(raw) == clean


def test_first_sentence_and_summary() -> None:
    """The first sentence; the summary is the first paragraph, before any tag."""
    text = "Return the value. It is cached (see e.g. the cache).\n\nDetails."
    assert first_sentence(text) == "Return the value."
    assert summary(text) == "Return the value. It is cached (see e.g. the cache)."
    assert summary("Do it.\n@param {x} a") == "Do it."
    assert len(summary("Word. " * 200)) <= 400


def test_locate_lines_is_verbatim() -> None:
    """The span runs from the first line to the last, with whatever lies between."""
    document = "// Area returns the area.\n// It is documented.\nfunc Area() {}"
    span = locate_lines(document, ["Area returns the area.", "It is documented."])
    assert span == "Area returns the area.\n// It is documented."
    assert locate_lines(document, ["missing"]) is None


PYTHON_METHOD = '''def push(self, item):
        """Push one item.

        Twice as fast.
        """
        self.items.append(item)'''


def test_reindent_and_docstring_removal() -> None:
    """A method reads on its own; the docstring can be taken out or kept alone."""
    container = make_unit(
        "python", "class S:", "class S:\n    " + PYTHON_METHOD, kind=UnitKind.CLASS
    )
    method = make_unit(
        "python", "def push(self, item):", PYTHON_METHOD, "Push one item.\n\nTwice as fast."
    )
    method = method.model_copy(update={"parent": "S", "start_byte": 13})
    shown = reindent(method, container.model_copy(update={"qualified_name": "S"}))
    assert shown.source.split("\n")[-1] == "    self.items.append(item)"
    ast.parse(shown.source)
    without = source_without_docstring(shown)
    assert without == "def push(self, item):\n    self.items.append(item)"
    assert stub(shown) == shown.source.rsplit("\n", 1)[0] + "\n    ..."


def test_docstring_only_body_keeps_a_body() -> None:
    """Removing the only statement leaves `...`, so the code still reads as a definition."""
    unit = make_unit("python", "def f():", "def f():\n    'Doc.'", "Doc.")
    assert source_without_docstring(unit) == "def f():\n    ..."


def test_code_view_blanks_strings_and_comments() -> None:
    """Calls named in strings, comments or docstrings are not calls."""
    source = 'def f():\n    """Call g() here."""\n    # h()\n    x("k()")\n    return y()'
    view = code_view(make_unit("python", "def f():", source, "Call g() here."))
    assert "g()" not in view and "h()" not in view and "k()" not in view
    assert 'x("' in view and "y()" in view and len(view) == len(source)

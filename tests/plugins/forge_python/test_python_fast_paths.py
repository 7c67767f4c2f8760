"""The parser's shortcuts give exactly what the slow, obvious way gives."""

from __future__ import annotations

import ast
import random
import warnings

import pytest
from tree_sitter import Node, QueryCursor

from forge_core.contracts import CodeUnit
from forge_python.astref import ast_units, parser_units, stdlib_files
from forge_python.fields import (
    TRAILING_EXTRAS,
    References,
    content_end,
    content_end_node,
    file_imports,
    string_literal_value,
)
from forge_python.parser import file_query, find_definitions, parse_source, parse_tree
from forge_python.source import SourceText, source_encoding

SOURCE = '''\
"""Module docstring."""
import os
from . import sibling


@decorator
class Outer(Base):
    R"""Raw, with "quotes" inside."""

    x = 1

    @property
    def value(self):
        u'single line, unicode prefix  '
        return os.path.join(self.x)  # trailing comment

    def tabs(self):
        """\tTab first.

        \tTabbed body.
        """

    def implicit(self):
        ("part one "
         'part two')

    def escaped(self):
        "a\\tb"

    def not_a_string(self):
        name = "value"

    def fstring(self):
        f"{self}"

    def empty(self):
        """"""
        # only a comment after


def quotes_at_the_end():
    """ends with a quote\\""""
    pass


class Bytes:
    b"not a docstring"


def crlf_free(x):
    return sibling(x)  # comment
    # and a dedented comment
'''


def _literal_eval_str(text: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _walked_end(node: Node) -> int:
    """``content_end`` without its shortcut: step down the last children, skipping comments."""
    current = node
    while True:
        last = next((c for c in reversed(current.children) if c.type not in TRAILING_EXTRAS), None)
        if last is None:
            return current.end_byte
        current = last


def test_units_agree_with_ast() -> None:
    """Docstrings read without compiling them are still exactly ``ast.get_docstring``'s."""
    data = SOURCE.encode()
    assert parser_units(parse_source("pkg/mod.py", data)) == ast_units(data)
    crlf = data.replace(b"\n", b"\r\n")
    assert parser_units(parse_source("pkg/mod.py", crlf)) == ast_units(crlf)


@pytest.mark.parametrize(
    "text",
    [
        '"plain"',
        "'plain'",
        '"""triple"""',
        "'''triple'''",
        '""',
        '""""""',
        '""""quote first"""',
        '"""quote last""""',
        'r"raw"',
        'u"unicode"',
        'R"""raw triple"""',
        'b"bytes"',
        'f"{x}"',
        'rb"x"',
        '"a" "b"',
        '("a")',
        '("a" \n "b")',
        '"a\\tb"',
        '"a\rb"',
        '"unterminated',
        '"line\nbreak"',
        "name = 'x'",
        "abc",
        "set()",
        "1",
        "not 'x'",
        "'x' if y else 'z'",
        '"x".strip()',
    ],
)
def test_string_literal_value_is_literal_eval(text: str) -> None:
    """Each shortcut agrees with ``ast.literal_eval`` on the texts that exercise it."""
    assert string_literal_value(text) == _literal_eval_str(text)


def test_string_literal_value_on_random_texts() -> None:
    """Random concatenations of quote-ish pieces: the shortcut never disagrees."""
    pieces = ['"', "'", '"""', "'''", "r", "u", "b", "f", "R", "x", "\\", "\\n", "\n", "\r"]
    pieces += ["\0", " ", "(", ")", "+", "é", "\t", "#", "1", ",", "''", '""', "\\\n", "ur"]
    rng = random.Random(7)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        assert string_literal_value(text) == _literal_eval_str(text), repr(text)


def test_content_end_shortcut_matches_the_walk() -> None:
    """Units that end with code or with a trailing comment end where the walk says."""
    source = SourceText(SOURCE.encode())
    root = parse_tree(source)
    definitions = find_definitions(root, source)
    assert len(definitions) == 11
    for found in definitions:
        assert content_end(found.node) == _walked_end(found.node)
        # With the file's bytes, the last line's text may answer instead of the tree.
        assert content_end_node(found.node, source.data).end_byte == _walked_end(found.node)


def test_every_prefix_parses_into_units_equal_to_validated_ones() -> None:
    """Broken files never raise, and units built without validation equal validated ones."""
    data = SOURCE.encode()
    fields = set(CodeUnit.model_fields)  # the parsers pass every field, an empty id too
    for end in range(0, len(data) + 1, 3):
        result = parse_source("pkg/mod.py", data[:end])
        for unit in result.units:
            assert CodeUnit.model_validate(unit.model_dump()) == unit
            assert unit.model_fields_set == fields


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"x = 1\n", "utf-8"),
        (b"\xef\xbb\xbfx = 1\n", "utf-8"),
        (b"# -*- coding: latin-1 -*-\nx = 1\n", "iso8859-1"),
        (b"#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\n", "cp1252"),
        (b"x = 1\ny = 2\n# coding: latin-1\n", "utf-8"),
        (b"# coding: utf-16\n", "utf-8"),
        (b"# coding: no-such-codec\n", "utf-8"),
    ],
)
def test_source_encoding(data: bytes, encoding: str) -> None:
    """A cookie counts in the first two lines only; unusable ones fall back to UTF-8."""
    assert source_encoding(data) == encoding


NO_DEFINITIONS = """\
import os, sys as system
from . import sibling
from __future__ import annotations
if os.name:
    import json
elif sys:
    from .pkg import (a, b as c)
else:
    import re
try:
    import tomllib
except ImportError:
    from pip._vendor import tomli as tomllib
except* OSError:
    import errno
else:
    import csv
finally:
    import atexit
with open(p) as f:
    import io
for x in y:
    import abc
while x:
    import ast
match x:
    case 1:
        import zlib
value = [lambda: __import__("no")]
"""


def _whole_tree_facts(data: bytes) -> tuple[list[str], References]:
    """Imports and names the plain way: one query over the whole tree."""
    source = SourceText(data)
    captures = QueryCursor(file_query()).captures(parse_tree(source))
    imports = file_imports(captures.get("import", []), source)
    return imports, References.of(captures.get("ref", []), source, imports)


def test_imports_and_names_equal_those_of_a_whole_tree_query() -> None:
    """The parser's query covers only the units' span (none without units), the definition
    walk passing the imports outside it: the same imports and names as a whole-tree query.

    Checked on a module with imports in every kind of block, and on every stdlib file
    (broken ones go through the whole-tree query).
    """
    result = parse_source("pkg/mod.py", NO_DEFINITIONS.encode())
    assert result.units == [] and not result.has_syntax_error
    assert result.imports == _whole_tree_facts(NO_DEFINITIONS.encode())[0]
    assert result.imports == [
        "os", "sys", "sibling", "__future__", "annotations", "json", ".pkg", "a", "b",
        "re", "tomllib", "pip._vendor", "tomli", "errno", "csv", "atexit", "io", "abc",
        "ast", "zlib",
    ]  # fmt: skip
    without_units = with_units = 0
    for path in stdlib_files()[::3]:  # a third of them: ~5 s
        data = path.read_bytes()
        result = parse_source(path.name, data)
        imports, names = _whole_tree_facts(data)
        assert result.imports == imports, path
        for unit in result.units:
            assert unit.references == names.within(unit.start_byte, unit.end_byte), unit.id
        with_units += bool(result.units)
        without_units += not result.units
    assert with_units > 300 and without_units > 20

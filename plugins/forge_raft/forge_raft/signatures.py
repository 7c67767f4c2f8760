"""Parameter lists and return types, read from a unit's signature text.

The parsers work on the ``signature`` field every language plugin fills, for
Python, JavaScript and Go, and fall back to a JavaScript-like reading for any
other language. Python headers go to Python's own parser first (a default such as
``lambda a, b: a < b`` has commas no text splitter can place); the rest, and
Python that this interpreter cannot parse, are read as text. Brackets and string
literals are balanced, so defaults such as ``sep=", "`` or types such as
``func(T) U`` and ``dict[str, int]`` stay in one piece.
"""

from __future__ import annotations

import ast
import io
import re
import warnings
from dataclasses import dataclass

from forge_core.contracts import CodeUnit, UnitKind

__all__ = ["Parameter", "Signature", "parse_signature", "split_top_level"]

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}
QUOTES = "\"'`"
#: Go words that begin a type, so ``chan int`` is an unnamed parameter, not ``chan`` of ``int``.
GO_TYPE_WORDS = frozenset({"chan", "func", "map", "struct", "interface", "<-chan", "chan<-"})
JSDOC_TAG = re.compile(r"@(?P<tag>param|arg|argument|returns?)\s*(?=\{)")
JSDOC_NAME = re.compile(r"\s*\[?(?P<name>[\w$.]+)")


@dataclass(frozen=True)
class Parameter:
    """One declared parameter."""

    name: str
    type: str | None = None
    default: str | None = None
    kind: str = ""  # "", positional-only, keyword-only, variadic, variadic keyword


@dataclass(frozen=True)
class Signature:
    """The parameters and declared result of a function or method."""

    parameters: tuple[Parameter, ...]
    returns: str | None


def _skip_string(text: str, index: int) -> int:
    """Index just past the string literal that starts at ``index``."""
    quote = text[index]
    triple = text[index : index + 3] == quote * 3 and quote != "`"
    end_token = quote * 3 if triple else quote
    position = index + len(end_token)
    while position < len(text):
        if text[position] == "\\":
            position += 2
            continue
        if text.startswith(end_token, position):
            return position + len(end_token)
        if text[position] == "\n" and not triple and quote != "`":
            return position  # an unterminated one-line string ends at the line
        position += 1
    return len(text)


def matching_close(text: str, index: int) -> int | None:
    """Index of the bracket closing the one at ``index``, skipping strings; None if absent."""
    stack: list[str] = []
    position = index
    while position < len(text):
        char = text[position]
        if char in QUOTES:
            position = _skip_string(text, position)
            continue
        if char in OPENERS:
            stack.append(OPENERS[char])
        elif char in CLOSERS:
            if not stack or stack.pop() != char:
                return None
            if not stack:
                return position
        position += 1
    return None


def _top_level(text: str) -> list[tuple[int, str]]:
    """(index, char) of every character outside string literals, with bracket depth 0."""
    found: list[tuple[int, str]] = []
    depth, position = 0, 0
    while position < len(text):
        char = text[position]
        if char in QUOTES:
            position = _skip_string(text, position)
            continue
        if char in CLOSERS:
            depth -= 1
        if depth == 0 and char not in CLOSERS:
            found.append((position, char))
        if char in OPENERS:
            depth += 1
        position += 1
    return found


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split ``text`` on a one-character ``separator`` outside brackets and strings."""
    cuts = [i for i, char in _top_level(text) if char == separator]
    bounds = zip([-1, *cuts], [*cuts, len(text)], strict=True)
    return [text[a + 1 : b].strip() for a, b in bounds if text[a + 1 : b].strip()]


def _first_open_paren(text: str, start: int = 0) -> int | None:
    """Index of the first ``(`` outside strings and square brackets."""
    position, depth = start, 0
    while position < len(text):
        char = text[position]
        if char in QUOTES:
            position = _skip_string(text, position)
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "(" and depth == 0:
            return position
        position += 1
    return None


def _drop_comments(text: str, marker: str) -> str:
    """Remove line comments from a parameter list (lines with quotes are left alone)."""
    lines = []
    for line in text.split("\n"):
        if marker in line and not any(q in line for q in QUOTES):
            line = line.split(marker, 1)[0]
        lines.append(line)
    return "\n".join(lines)


def _param_group(signature: str, start: int = 0) -> tuple[str, int] | None:
    """The text inside the parameter parentheses and the index just past them."""
    opening = _first_open_paren(signature, start)
    if opening is None:
        return None
    closing = matching_close(signature, opening)
    if closing is None:
        return None
    return signature[opening + 1 : closing], closing + 1


# --------------------------------------------------------------------------- python


def _python(signature: str) -> Signature | None:
    """Python's own parser first; the text splitter for what it cannot read (Python 2, PEP 695)."""
    header = re.match(r"\s*(?:async\s+)?def\s+\w+\s*", signature)
    if header is None:
        return None
    return _python_ast(signature.strip()) or _python_text(signature, header.end())


def _python_ast(header: str) -> Signature | None:
    """The parameters of a ``def ...:`` header read with :mod:`ast`; None when it does not parse.

    A text splitter cannot know that the commas of ``key=lambda a, b: a < b`` are the
    lambda's own; the parser does. Annotations and defaults keep their source text.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. an invalid escape in a default string
            tree = ast.parse(header + " pass")
    except (SyntaxError, ValueError, RecursionError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    function, source = tree.body[0], _SourceText(header)
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults))
    defaults += arguments.defaults
    parameters = [
        source.parameter(
            arg, default, "positional-only" if index < len(arguments.posonlyargs) else ""
        )
        for index, (arg, default) in enumerate(zip(positional, defaults, strict=True))
    ]
    if arguments.vararg:
        parameters.append(source.parameter(arguments.vararg, None, "variadic"))
    for arg, keyword_default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        parameters.append(source.parameter(arg, keyword_default, "keyword-only"))
    if arguments.kwarg:
        parameters.append(source.parameter(arguments.kwarg, None, "variadic keyword"))
    returns = source.segment(function.returns) if function.returns is not None else None
    return Signature(tuple(parameters), returns or None)


class _SourceText:
    """The text of a parsed header, sliced by the positions of its ast nodes."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Lines as the parser counts them: \n, \r\n and \r end one; \f and \u2028 do not.
        self.lines = io.StringIO(text, newline="").readlines()
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def _index(self, lineno: int, byte_column: int) -> int:
        line = self.lines[lineno - 1]
        column = byte_column if line.isascii() else len(line.encode()[:byte_column].decode())
        return self.starts[lineno - 1] + column

    def segment(self, node: ast.expr) -> str:
        """The node's text with the brackets that group it, as written (less line comments).

        The parser's positions leave out grouping brackets (``(1)`` is ``1``); the text
        splitter kept them, and so do the answers.
        """
        start = self._index(node.lineno, node.col_offset)
        end = self._index(node.end_lineno or node.lineno, node.end_col_offset or node.col_offset)
        while True:
            before = start - 1
            while before >= 0 and self.text[before].isspace():
                before -= 1
            after = end
            while after < len(self.text) and self.text[after].isspace():
                after += 1
            if before < 0 or self.text[before] != "(" or self.text[after : after + 1] != ")":
                break
            start, end = before, after + 1
        return _drop_comments(self.text[start:end], "#").strip()

    def parameter(self, arg: ast.arg, default: ast.expr | None, kind: str) -> Parameter:
        """One parameter, its annotation and default as written."""
        annotation = self.segment(arg.annotation) if arg.annotation is not None else None
        value = self.segment(default) if default is not None else None
        return Parameter(arg.arg, annotation or None, value, kind)


def _python_text(signature: str, start: int) -> Signature | None:
    """The parameters of a ``def`` header, split on its top-level commas."""
    group = _param_group(signature, start)
    if group is None:
        return None
    inside, after = group
    rest = signature[after:].strip().removesuffix(":").strip()
    returns = rest[2:].strip() if rest.startswith("->") else None
    parameters: list[Parameter] = []
    keyword_only = False
    for piece in split_top_level(_drop_comments(inside, "#")):
        if piece == "/":
            parameters = [
                Parameter(p.name, p.type, p.default, p.kind or "positional-only")
                for p in parameters
            ]
            continue
        if piece == "*":
            keyword_only = True
            continue
        kind = "keyword-only" if keyword_only else ""
        if piece.startswith("**"):
            kind, piece = "variadic keyword", piece[2:]
        elif piece.startswith("*"):
            kind, piece, keyword_only = "variadic", piece[1:], True
        name_part, default = _split_default(piece)
        name, _, annotation = name_part.partition(":")
        parameters.append(Parameter(name.strip(), annotation.strip() or None, default, kind))
    return Signature(tuple(parameters), returns or None)


def _split_default(piece: str) -> tuple[str, str | None]:
    """``name: T = value`` → (``name: T``, ``value``); ``==``, ``<=``, ``=>`` are no defaults."""
    for index, char in _top_level(piece):
        before, after = piece[index - 1 : index], piece[index + 1 : index + 2]
        if char == "=" and before not in ("=", "!", "<", ">") and after not in ("=", ">"):
            return piece[:index].strip(), piece[index + 1 :].strip()
    return piece.strip(), None


# --------------------------------------------------------------------------- javascript


def _javascript(signature: str, docstring: str | None) -> Signature | None:
    group = _param_group(signature)
    if group is None:
        arrow = re.search(r"([\w$]+)\s*=>\s*$", signature)
        if arrow is None:
            return None
        inside = arrow.group(1)
    else:
        inside = group[0]
    doc_types, returns = _jsdoc_types(docstring or "")
    parameters = []
    for piece in split_top_level(_drop_comments(inside, "//")):
        kind = ""
        if piece.startswith("..."):
            kind, piece = "variadic", piece[3:]
        name, default = _split_default(piece)
        parameters.append(Parameter(name, doc_types.get(name), default, kind))
    return Signature(tuple(parameters), returns)


def _jsdoc_types(doc: str) -> tuple[dict[str, str], str | None]:
    """Parameter types and the result type a JSDoc comment declares (``@param {T} name``)."""
    types: dict[str, str] = {}
    returns = None
    for tag in JSDOC_TAG.finditer(doc):
        closing = matching_close(doc, tag.end())
        if closing is None:
            continue
        type_text = " ".join(doc[tag.end() + 1 : closing].split())
        if tag["tag"].startswith("return"):
            returns = returns or type_text
            continue
        name = JSDOC_NAME.match(doc, closing + 1)
        if name is not None:
            types.setdefault(name["name"], type_text)
    return types, returns


# --------------------------------------------------------------------------- go


def _go(signature: str) -> Signature | None:
    header = re.match(r"\s*func\s*", signature)
    if header is None:
        return None
    position = header.end()
    if signature[position : position + 1] == "(":  # the receiver
        closing = matching_close(signature, position)
        if closing is None:
            return None
        position = closing + 1
    group = _param_group(signature, position)
    if group is None:
        return None
    inside, after = group
    results = signature[after:].strip().removesuffix("{").strip()
    if results.startswith("(") and matching_close(results, 0) == len(results) - 1:
        results = results[1:-1].strip()
    return Signature(_go_parameters(inside), results or None)


def _go_parameters(inside: str) -> tuple[Parameter, ...]:
    pieces = split_top_level(_drop_comments(inside, "//"))
    split = [piece.split(None, 1) for piece in pieces]
    named = any(
        len(parts) == 2 and parts[0] not in GO_TYPE_WORDS and re.fullmatch(r"\w+", parts[0])
        for parts in split
    )
    if not named:  # `func(int, string)`: types only
        return tuple(Parameter("", piece) for piece in pieces)
    parameters: list[Parameter] = []
    pending: list[str] = []
    for parts in split:
        if len(parts) == 1:
            pending.append(parts[0])
            continue
        name, type_text = parts[0], parts[1].strip()
        kind = "variadic" if type_text.startswith("...") else ""
        for waiting in pending:
            parameters.append(Parameter(waiting, type_text, None, kind))
        pending = []
        parameters.append(Parameter(name, type_text, None, kind))
    parameters.extend(Parameter(name) for name in pending)
    return tuple(parameters)


# --------------------------------------------------------------------------- entry


def parse_signature(unit: CodeUnit) -> Signature | None:
    """The parameters and result of a function or method unit; None when unreadable."""
    if unit.kind not in (UnitKind.FUNCTION, UnitKind.METHOD):
        return None
    if unit.language == "python":
        return _python(unit.signature)
    if unit.language == "go":
        return _go(unit.signature)
    return _javascript(unit.signature, unit.docstring)

"""The values a Jinja chat template is partially evaluated into (see :mod:`.template`).

A value is either known when the template is translated (a Python constant:
``bos_token``, a literal, ``None`` for ``tools``, ``UNDEFINED`` for names nobody
passes) or only when Ollama
renders it (:class:`Go`: a Go operand such as ``$message.Role``), or a string
built from both (:class:`Text`).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The roles of Forge's conversations (contracts.ChatMessage).
FORGE_ROLES: tuple[str, ...] = ("system", "user", "assistant")
MANUAL_HINT = (
    "write the Ollama template yourself and pass it as deploy.ollama_template "
    "(Go template syntax, see https://github.com/ollama/ollama/blob/main/docs/template.md)"
)


class TemplateError(ValueError):
    """The chat template uses a construct this translator cannot express in Go."""


class _Undefined:
    """Jinja's undefined value: falsy, renders as nothing."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()
RAISE = object()  # the raise_exception function
RAISED = object()  # the result of calling it


@dataclass(frozen=True)
class Go:
    """A value known only when Ollama renders: a Go operand and what it holds."""

    expr: str
    kind: str  # "str", "role", "int", "bool", "msg" or "list"
    disjuncts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Text:
    """A string concatenated from literals and Go strings."""

    parts: tuple[str | Go, ...]


@dataclass(frozen=True)
class Loop:
    """Jinja's ``loop`` object inside a ``range`` over ``items``."""

    index: str
    items: str


@dataclass(frozen=True)
class Method:
    """A bound string method (``.strip``) waiting to be called."""

    name: str
    target: Any


@dataclass(frozen=True)
class GoTemplate:
    """The translated template and what was approximated on the way."""

    text: str
    notes: list[str] = field(default_factory=list)


def go_quote(text: str) -> str:
    """A Go interpreted string literal (JSON escapes are valid Go escapes)."""
    return json.dumps(text, ensure_ascii=False)


#: The Go kinds that print as text.
STRINGS = ("str", "role", "int")


def describe(value: Any) -> str:
    """A value as error messages show it."""
    if isinstance(value, Go):
        return f"`{value.expr}`"
    if isinstance(value, Text):
        return "a string known only at render time"
    if isinstance(value, Loop):
        return "loop"
    return repr(value)


def is_const(value: Any) -> bool:
    """Known at translation time."""
    return not isinstance(value, (Go, Text, Loop, Method))


def stringish(value: Any) -> bool:
    """A string, known now or at render time."""
    return isinstance(value, (str, Text)) or (isinstance(value, Go) and value.kind in STRINGS)


PYTHON_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


def to_parts(value: Any) -> tuple[str | Go, ...]:
    """The pieces a value prints as (Jinja's rules for constants)."""
    if isinstance(value, Text):
        return value.parts
    if isinstance(value, Go) and value.kind in STRINGS:
        return (value,)
    if isinstance(value, str):
        return (value,)
    if value is UNDEFINED:
        return ()
    if value is None or isinstance(value, (int, float, bool)):
        return (str(value),)
    raise TemplateError(f"cannot use {value!r} as a string")


def concat(parts: Sequence[str | Go]) -> Any:
    """Merge literals; a text made only of literals is a plain string."""
    merged: list[str | Go] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    if all(isinstance(p, str) for p in merged):
        return "".join(p for p in merged if isinstance(p, str))
    if len(merged) == 1 and isinstance(merged[0], Go):
        return merged[0]
    return Text(tuple(merged))


def go_arg(value: Any) -> str:
    """A Go argument for a value (a literal, an operand, or ``(print …)``)."""
    if isinstance(value, Go):
        return value.expr
    if isinstance(value, Text):
        return "(print " + " ".join(go_arg(p) for p in value.parts) + ")"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    raise TemplateError(f"cannot use {value!r} in a Go expression")


def go_bool(expr: str, disjuncts: tuple[str, ...] = ()) -> Go:
    """A Go condition; ``disjuncts`` are the cases of an ``or`` (to spot dead ``elif``s)."""
    return Go(expr, "bool", disjuncts or (expr,))


def unparen(expr: str, head: str = "") -> str:
    """``(eq a b)`` → ``eq a b`` for an action; ``(or x y)`` → ``x y`` to flatten ``or``."""
    if head and not (expr.startswith(f"({head}") and balanced(expr[1:-1])):
        return expr
    if head:
        return expr[len(head) + 1 : -1]
    return expr[1:-1] if expr.startswith("(") and balanced(expr[1:-1]) else expr


def balanced(inner: str) -> bool:
    """Whether parentheses outside string literals balance (and never close early)."""
    depth, position = 0, 0
    while position < len(inner):
        char = inner[position]
        if char == '"':
            position += 1
            while position < len(inner) and inner[position] != '"':
                position += 2 if inner[position] == "\\" else 1
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth < 0:
                return False
        position += 1
    return depth == 0

"""A small evaluator for the Go ``text/template`` subset Ollama chat templates use.

It exists to check translations without an Ollama daemon: the deploy step (and
the tests) render the Jinja template and its Go translation on the same
conversations and compare. Supported: text, ``{{- … -}}`` trimming, ``if`` /
``else if`` / ``else`` / ``end``, ``range $i, $m := …``, ``$x := …`` and
``$x = …``, fields (``.Role``, ``$.Messages``, ``(index …).Content``), string,
number and boolean literals, and the functions ``eq ne and or not len index
slice print``. Anything else raises :class:`GoTemplateError`. :func:`ollama_prompt`
prepares the data the way Ollama's ``template.Execute`` does.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<number>-?\d+)|(?P<assign>:=|=)'
    r"|(?P<punct>[(),])|(?P<var>\$\w*(?:\.\w+)*)|(?P<field>(?:\.\w+)+|\.)|(?P<ident>\w+))"
)
_SPACE = " \t\r\n"


class GoTemplateError(ValueError):
    """The template is outside the supported subset, or failed to render."""


@dataclass
class _Node:
    kind: str  # "text", "print", "assign", "if", "range"
    text: str = ""
    pipe: list[Any] = field(default_factory=list)
    variables: tuple[str, ...] = ()
    declare: bool = False
    branches: list[tuple[list[Any], list[_Node]]] = field(default_factory=list)
    body: list[_Node] = field(default_factory=list)
    else_body: list[_Node] | None = None


def _actions(source: str) -> list[tuple[str, str]]:
    """Split into ("text", …) and ("action", …), applying the trim markers."""
    pieces: list[tuple[str, str]] = []
    position = 0
    while True:
        start = source.find("{{", position)
        if start < 0:
            pieces.append(("text", source[position:]))
            return pieces
        text = source[position:start]
        inner_start = start + 2
        if source.startswith("- ", inner_start) or source.startswith("-\n", inner_start):
            text, inner_start = text.rstrip(_SPACE), inner_start + 1
        pieces.append(("text", text))
        end, quote = inner_start, ""
        while end < len(source) and (quote or not source.startswith("}}", end)):
            char = source[end]
            if quote:
                if char == "\\" and quote == '"':
                    end += 1
                elif char == quote:
                    quote = ""
            elif char in '"`':
                quote = char
            end += 1
        if end >= len(source):
            raise GoTemplateError(f"unclosed action at offset {start}")
        inner, trim_after = source[inner_start:end], False
        if inner.endswith(" -") or inner.endswith("\n-"):
            inner, trim_after = inner[:-1], True
        pieces.append(("action", inner.strip()))
        position = end + 2
        if trim_after:
            while position < len(source) and source[position] in _SPACE:
                position += 1


def _tokens(action: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(action.rstrip()):
        match = _TOKEN.match(action, position)
        if match is None or match.end() == position:
            raise GoTemplateError(f"cannot read {action[position:]!r} in {{{{ {action} }}}}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _parse_args(tokens: list[tuple[str, str]], position: int) -> tuple[list[Any], int]:
    """Operands until ``)`` or the end; a parenthesised pipeline may be followed by fields."""
    args: list[Any] = []
    while position < len(tokens) and tokens[position] != ("punct", ")"):
        kind, value = tokens[position]
        if (kind, value) == ("punct", "("):
            inner, position = _parse_args(tokens, position + 1)
            if position >= len(tokens):
                raise GoTemplateError("unbalanced parentheses")
            position += 1
            fields: list[str] = []
            if position < len(tokens) and tokens[position][0] == "field":
                fields = tokens[position][1].split(".")[1:]
                position += 1
            args.append(("call", inner, fields))
            continue
        if kind == "string":
            literal = value[1:-1] if value.startswith("`") else ast.literal_eval(value)
            args.append(("const", literal))
        elif kind == "number":
            args.append(("const", int(value)))
        elif kind == "ident" and value in ("true", "false"):
            args.append(("const", value == "true"))
        elif kind in ("var", "field", "ident"):
            args.append((kind, value))
        else:
            raise GoTemplateError(f"unexpected {value!r}")
        position += 1
    return args, position


def _pipe(tokens: list[tuple[str, str]]) -> list[Any]:
    args, position = _parse_args(tokens, 0)
    if position != len(tokens) or not args:
        raise GoTemplateError("unexpected ')' or empty pipeline")
    return args


def parse(source: str) -> list[_Node]:
    """Parse a template into nodes."""
    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    for kind, content in _actions(source):
        container = stack[-1][1]
        if kind == "text":
            if content:
                container.append(_Node("text", text=content))
            continue
        if content.startswith("/*"):
            continue
        tokens = _tokens(content)
        word = tokens[0][1] if tokens else ""
        if word == "if":
            node = _Node("if")
            node.branches.append((_pipe(tokens[1:]), []))
            container.append(node)
            stack.append((node, node.branches[-1][1]))
        elif word == "else":
            node_or_none, _ = stack[-1]
            if node_or_none is None:
                raise GoTemplateError("else without if")
            stack.pop()
            if len(tokens) > 1 and tokens[1][1] == "if" and node_or_none.kind == "if":
                node_or_none.branches.append((_pipe(tokens[2:]), []))
                stack.append((node_or_none, node_or_none.branches[-1][1]))
            else:
                node_or_none.else_body = []
                stack.append((node_or_none, node_or_none.else_body))
        elif word == "end":
            if len(stack) == 1:
                raise GoTemplateError("end without if or range")
            stack.pop()
        elif word == "range":
            rest, variables = tokens[1:], tuple[str, ...]()
            if any(t == ("assign", ":=") for t in rest):
                split = rest.index(("assign", ":="))
                variables = tuple(v for k, v in rest[:split] if k == "var")
                rest = rest[split + 1 :]
            node = _Node("range", pipe=_pipe(rest), variables=variables)
            container.append(node)
            stack.append((node, node.body))
        elif len(tokens) > 2 and tokens[0][0] == "var" and tokens[1][0] == "assign":
            declare = tokens[1][1] == ":="
            container.append(
                _Node("assign", pipe=_pipe(tokens[2:]), variables=(word,), declare=declare)
            )
        elif word in ("with", "define", "template", "block", "break", "continue"):
            raise GoTemplateError(f"{{{{ {word} }}}} is not supported by this evaluator")
        else:
            container.append(_Node("print", pipe=_pipe(tokens)))
    if len(stack) != 1:
        raise GoTemplateError("missing {{ end }}")
    return root


def truth(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings/slices/maps are false."""
    return value is not None and value is not False and value != 0 and value not in ("", [], {})


def _basic(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    raise GoTemplateError(f"cannot compare {value!r}")


def _eq(first: Any, *others: Any) -> bool:
    for other in others:
        if _basic(first) != _basic(other):
            raise GoTemplateError(f"incompatible types for comparison: {first!r}, {other!r}")
        if first == other:
            return True
    return False


def _sprint(*values: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = ""
    for position, value in enumerate(values):
        both = position > 0 and not isinstance(values[position - 1], str)
        if both and not isinstance(value, str):
            out += " "
        out += _format(value)
    return out


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    raise GoTemplateError(f"printing {value!r} is not supported")


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "not": lambda a: not truth(a),
    "len": len,
    "index": lambda value, *keys: _index(value, keys),
    "slice": lambda value, *bounds: _slice(value, bounds),
    "print": _sprint,
}


def _slice(value: Any, bounds: Sequence[int]) -> Any:
    """Go's ``slice x i j``: ``x[i:j]``; ``slice x i``: ``x[i:]``."""
    if len(bounds) > 2 or not all(0 <= b <= len(value) for b in bounds):
        raise GoTemplateError(f"slice bounds out of range: {list(bounds)}")
    if len(bounds) == 2:
        return value[bounds[0] : bounds[1]]
    return value[bounds[0] :] if bounds else value


def _index(value: Any, keys: Sequence[Any]) -> Any:
    for key in keys:
        if isinstance(value, list) and not 0 <= key < len(value):
            raise GoTemplateError(f"index out of range: {key}")
        value = value[key]
    return value


class _Renderer:
    def __init__(self, data: dict[str, Any]) -> None:
        self.root = data
        self.scopes: list[dict[str, Any]] = [{"$": data}]
        self.dot: Any = data

    def field(self, value: Any, names: Sequence[str]) -> Any:
        for name in names:
            if not isinstance(value, dict):
                raise GoTemplateError(f"can't evaluate field {name} in {value!r}")
            value = value.get(name)
        return value

    def variable(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise GoTemplateError(f"undefined variable {name}")

    def operand(self, arg: Any) -> Any:
        kind = arg[0]
        if kind == "const":
            return arg[1]
        if kind == "var":
            name, *fields = arg[1].split(".")
            return self.field(self.variable(name), fields)
        if kind == "field":
            return self.field(self.dot, [] if arg[1] == "." else arg[1].split(".")[1:])
        if kind == "call":
            return self.field(self.pipe(arg[1]), arg[2])
        raise GoTemplateError(f"{arg[1]!r} is not a value")

    def pipe(self, args: list[Any]) -> Any:
        head = args[0]
        if head[0] != "ident":
            if len(args) > 1:
                raise GoTemplateError(f"can't give arguments to non-function {head[1]!r}")
            return self.operand(head)
        name, rest = head[1], args[1:]
        if name in ("and", "or"):  # lazy, returning the deciding operand
            value: Any = None
            for arg in rest:
                value = self.operand(arg)
                if truth(value) != (name == "and"):
                    return value
            return value
        if name not in _FUNCTIONS:
            raise GoTemplateError(f'function "{name}" not defined')
        return _FUNCTIONS[name](*(self.operand(a) for a in rest))

    def run(self, nodes: list[_Node], out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "print":
                out.append(_format(self.pipe(node.pipe)))
            elif node.kind == "assign":
                self.assign(node)
            elif node.kind == "if":
                chosen = next((b for p, b in node.branches if truth(self.pipe(p))), None)
                self.scoped(node.else_body if chosen is None else chosen, out)
            else:
                self.range(node, out)

    def assign(self, node: _Node) -> None:
        name, value = node.variables[0], self.pipe(node.pipe)
        if node.declare:
            self.scopes[-1][name] = value
            return
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        raise GoTemplateError(f"undefined variable {name}")

    def scoped(self, nodes: list[_Node] | None, out: list[str], **names: Any) -> None:
        if nodes is None:
            return
        self.scopes.append(dict(names))
        try:
            self.run(nodes, out)
        finally:
            self.scopes.pop()

    def range(self, node: _Node, out: list[str]) -> None:
        items = self.pipe(node.pipe)
        if not isinstance(items, list):
            raise GoTemplateError(f"range over {items!r}")
        if not items:
            self.scoped(node.else_body, out)
            return
        outer = self.dot
        for index, item in enumerate(items):
            names = dict(zip(node.variables, (index, item), strict=False))
            if len(node.variables) == 1:
                names = {node.variables[0]: item}
            self.dot = item
            self.scoped(node.body, out, **names)
        self.dot = outer


def render(source: str, data: dict[str, Any]) -> str:
    """Render a Go template (the supported subset) with ``data``."""
    out: list[str] = []
    _Renderer(data).run(parse(source), out)
    return "".join(out)


def ollama_prompt(
    source: str, messages: Sequence[dict[str, str]], *, system: str | None = None
) -> str:
    """The prompt Ollama's chat endpoint renders for ``messages``.

    Like Ollama: the model's SYSTEM is prepended when the conversation has no
    system message, consecutive messages of one role are merged, and
    ``.System`` holds the system messages joined.
    """
    chat = [dict(m) for m in messages]
    if system and (not chat or chat[0]["role"] != "system"):
        chat.insert(0, {"role": "system", "content": system})
    collated: list[dict[str, str]] = []
    for message in chat:
        if collated and collated[-1]["role"] == message["role"] and message["role"] != "tool":
            collated[-1]["content"] += "\n\n" + message["content"]
        else:
            collated.append(dict(message))
    go_messages = [{"Role": m["role"], "Content": m["content"]} for m in collated]
    systems = [m["content"] for m in chat if m["role"] == "system"]
    data = {"Messages": go_messages, "System": "\n\n".join(systems), "Response": "", "Tools": []}
    return render(source, data)

"""Partial evaluation of Jinja expressions into constants or Go operands."""

from __future__ import annotations

from typing import Any

from jinja2 import nodes

from forge_ollama.jinja_values import (
    MANUAL_HINT,
    PYTHON_OPS,
    RAISE,
    RAISED,
    UNDEFINED,
    Go,
    Loop,
    Method,
    TemplateError,
    concat,
    describe,
    go_arg,
    go_bool,
    is_const,
    stringish,
    to_parts,
    unparen,
)


class Expressions:
    """The expression half of the translator; :class:`.template.Translator` adds statements."""

    roles: tuple[str, ...]
    context: dict[str, Any]
    frames: list[dict[str, Any]]
    scopes: list[int]
    var_scope: dict[str, int]
    uses_generation_prompt: bool
    notes: list[str]

    def fail(self, node: nodes.Node, what: str) -> TemplateError:
        """The error for a construct Go cannot express, with where it is and what to do."""
        return TemplateError(
            f"cannot translate the chat template to an Ollama template: {what} "
            f"(template line {getattr(node, 'lineno', '?')}); {MANUAL_HINT}"
        )

    def note(self, text: str) -> None:
        """Record an approximation made on the way."""
        if text not in self.notes:
            self.notes.append(text)

    def lookup(self, node: nodes.Name) -> Any:
        """A name: a loop or set variable, a known global, else undefined (``tools``)."""
        for frame in reversed(self.frames):
            if node.name in frame:
                value = frame[node.name]
                scope = self.var_scope.get(value.expr) if isinstance(value, Go) else None
                if scope is not None and scope not in self.scopes:
                    raise self.fail(node, f"{node.name!r} is set in a branch and used after it")
                return value
        if node.name == "add_generation_prompt":
            self.uses_generation_prompt = True
            return go_bool("$gen")
        return self.context.get(node.name, UNDEFINED)

    def expr(self, node: nodes.Node) -> Any:
        """Evaluate an expression into a constant or a Go value."""
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, (nodes.List, nodes.Tuple)):
            items = [self.expr(item) for item in node.items]
            if not all(is_const(item) for item in items):
                raise self.fail(node, "a list with values known only at render time")
            return tuple(items)
        if isinstance(node, nodes.Name):
            return self.lookup(node)
        if isinstance(node, nodes.Getattr):
            return self.item(node, self.expr(node.node), node.attr)
        if isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Slice):
                return self.slice(node, self.expr(node.node), node.arg)
            return self.item(node, self.expr(node.node), self.expr(node.arg))
        if isinstance(node, nodes.Call):
            return self.call(node)
        if isinstance(node, nodes.Filter):
            return self.filter(node)
        if isinstance(node, nodes.Test):
            return self.test(node)
        if isinstance(node, nodes.Compare):
            if len(node.ops) != 1:
                raise self.fail(node, "a chained comparison")
            operand = node.ops[0]
            return self.compare(node, self.expr(node.expr), operand.op, self.expr(operand.expr))
        if isinstance(node, nodes.Not):
            value = self.expr(node.node)
            if is_const(value):
                return not value
            return go_bool(f"(not {go_arg(value)})")
        if isinstance(node, (nodes.And, nodes.Or)):
            return self.logic(node, self.expr(node.left), self.expr(node.right))
        if isinstance(node, nodes.Concat):
            pieces = [p for child in node.nodes for p in self.pieces(child, self.expr(child))]
            return concat(pieces)
        if isinstance(node, nodes.Add):
            left, right = self.expr(node.left), self.expr(node.right)
            if is_const(left) and is_const(right):
                return left + right
            return concat([*self.pieces(node, left), *self.pieces(node, right)])
        if isinstance(node, (nodes.Neg, nodes.Pos)):
            value = self.expr(node.node)
            if is_const(value) and isinstance(value, (int, float)):
                return -value if isinstance(node, nodes.Neg) else value
            raise self.fail(node, "arithmetic on values known only at render time")
        if isinstance(node, nodes.CondExpr):
            test = self.expr(node.test)
            if not is_const(test):
                raise self.fail(node, "an inline if known only at render time")
            chosen = node.expr1 if test else node.expr2
            return UNDEFINED if chosen is None else self.expr(chosen)
        raise self.fail(node, f"the expression {type(node).__name__}")

    def pieces(self, node: nodes.Node, value: Any) -> tuple[str | Go, ...]:
        """The pieces a value prints as, or the translation error for this node."""
        try:
            return to_parts(value)
        except TemplateError as exc:
            raise self.fail(node, str(exc)) from None

    def item(self, node: nodes.Node, base: Any, key: Any) -> Any:
        """``base.key`` / ``base[key]``: message fields, ``messages[0]``, ``loop.*``."""
        if isinstance(base, Go) and base.kind == "msg":
            fields = {"role": ("Role", "role"), "content": ("Content", "str")}
            if key in fields:
                go_field, kind = fields[key]
                return Go(f"{base.expr}.{go_field}", kind)
            return UNDEFINED  # tool_calls, name, ...: Forge's messages never have them
        if isinstance(base, Go) and base.kind == "list":
            if isinstance(key, int) and not isinstance(key, bool) and key >= 0:
                return Go(f"(index {base.expr} {key})", "msg")
            if isinstance(key, Go) and key.kind == "int":
                return Go(f"(index {base.expr} {key.expr})", "msg")
        if isinstance(base, Loop):
            loop_fields = {
                "first": go_bool(f"(eq {base.index} 0)"),
                "last": go_bool(f"(eq (len (slice {base.items} {base.index})) 1)"),
                "index0": Go(base.index, "int"),
                "length": Go(f"(len {base.items})", "int"),
            }
            if key in loop_fields:
                return loop_fields[key]
            raise self.fail(node, f"loop.{key} (Go templates have no arithmetic)")
        if key in ("strip", "lstrip", "rstrip") and (stringish(base) or isinstance(base, str)):
            return Method(str(key), base)
        if base is UNDEFINED or base is None:
            return UNDEFINED
        if isinstance(base, dict) and key in base:
            return base[key]
        raise self.fail(node, f"the item {describe(key)} of {describe(base)}")

    def slice(self, node: nodes.Node, base: Any, where: nodes.Slice) -> Any:
        """``messages[1:]`` → ``(slice $.Messages 1)``."""
        bounds = [None if b is None else self.expr(b) for b in (where.start, where.stop)]
        if where.step is not None or not (isinstance(base, Go) and base.kind == "list"):
            raise self.fail(node, "this slice")
        if not all(b is None or (isinstance(b, int) and b >= 0) for b in bounds):
            raise self.fail(node, "a slice with negative or render-time bounds")
        args = " ".join(str(b) for b in ([bounds[0] or 0] + ([bounds[1]] if bounds[1] else [])))
        return Go(f"(slice {base.expr} {args})", "list")

    def call(self, node: nodes.Call) -> Any:
        """``raise_exception(…)`` and ``text.strip()``; nothing else."""
        function = self.expr(node.node)
        if function is RAISE:
            return RAISED
        if isinstance(function, Method) and not node.args and not node.kwargs:
            return self.trim(node, function.target, function.name)
        name = node.node.name if isinstance(node.node, nodes.Name) else describe(function)
        raise self.fail(node, f"the function call {name}()")

    def trim(self, node: nodes.Node, value: Any, how: str = "strip") -> Any:
        """``| trim`` / ``.strip()``: exact on constants, dropped (with a note) on messages."""
        if isinstance(value, str):
            return getattr(value, how)()
        if stringish(value):
            self.note(
                "trim/strip of message text is not carried over (Ollama templates have no "
                "trim): prompts match for messages without surrounding whitespace"
            )
            return value
        raise self.fail(node, f"trim of {describe(value)}")

    def filter(self, node: nodes.Filter) -> Any:
        """The filters chat templates use on plain text: trim, length, string."""
        if node.node is None or node.args or node.kwargs:
            raise self.fail(node, f"the filter {node.name!r} with arguments")
        value = self.expr(node.node)
        if node.name == "trim":
            return self.trim(node, value)
        if node.name in ("length", "count"):
            if isinstance(value, Go) and value.kind == "list":
                return Go(f"(len {value.expr})", "int")
            if is_const(value) and value is not UNDEFINED:
                return len(value)
        if node.name == "string" and stringish(value):
            return value
        raise self.fail(node, f"the filter {node.name!r}")

    def test(self, node: nodes.Test) -> Any:
        """``is defined`` / ``undefined`` / ``none`` / ``string``, decided now."""
        value = self.expr(node.node)
        known = is_const(value)
        tests = {
            "defined": value is not UNDEFINED,
            "undefined": value is UNDEFINED,
            "none": known and value is None,
            "string": isinstance(value, str) or stringish(value),
        }
        if node.name not in tests or node.args:
            raise self.fail(node, f"the test 'is {node.name}'")
        return tests[node.name]

    def compare(self, node: nodes.Node, left: Any, op: str, right: Any) -> Any:
        """Comparisons; a role compared with a role Forge never sends is decided now."""
        if is_const(left) and is_const(right):
            if op not in PYTHON_OPS:
                raise self.fail(node, f"the comparison {op}")
            return PYTHON_OPS[op](left, right)
        if op in ("eq", "ne"):
            dynamic, other = (left, right) if isinstance(left, Go) else (right, left)
            role = isinstance(dynamic, Go) and dynamic.kind == "role"
            if role and isinstance(other, str) and other not in self.roles:
                return op == "ne"  # e.g. role == "tool": never, for Forge
            return go_bool(f"({op} {go_arg(left)} {go_arg(right)})")
        if op in ("in", "notin") and isinstance(left, Go) and isinstance(right, tuple):
            choices = [c for c in right if left.kind != "role" or c in self.roles]
            if left.kind == "role" and set(self.roles) <= set(right):
                return op == "in"
            if not choices:
                return op == "notin"
            tests = tuple(f"(eq {left.expr} {go_arg(c)})" for c in choices)
            joined = f"(or {' '.join(tests)})" if len(tests) > 1 else tests[0]
            found = go_bool(joined, tests)
            return found if op == "in" else go_bool(f"(not {found.expr})")
        if op in ("lt", "lteq", "gt", "gteq"):
            go_op = {"lt": "lt", "lteq": "le", "gt": "gt", "gteq": "ge"}[op]
            return go_bool(f"({go_op} {go_arg(left)} {go_arg(right)})")
        raise self.fail(node, f"the comparison {op!r} of {describe(left)} and {describe(right)}")

    def logic(self, node: nodes.Node, left: Any, right: Any) -> Any:
        """``and`` / ``or``, folding constant sides away."""
        is_and = isinstance(node, nodes.And)
        for a, b in ((left, right), (right, left)):
            if is_const(a):
                if bool(a) == is_and:
                    return b  # `true and b`, `false or b`
                return a if a is left else not is_and
        if not (isinstance(left, Go) and isinstance(right, Go)):
            raise self.fail(node, "and/or of strings known only at render time")
        if is_and:
            return go_bool(f"(and {unparen(left.expr, 'and ')} {right.expr})")
        inner = [unparen(e, "or ") for e in (left.expr, right.expr)]
        cases = (left.disjuncts or (left.expr,)) + (right.disjuncts or (right.expr,))
        return go_bool(f"(or {' '.join(inner)})", cases)

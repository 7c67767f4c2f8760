"""Translate a Hugging Face (Jinja) chat template into Ollama's Go template.

Ollama renders prompts with Go's ``text/template`` over ``.Messages`` (each
with ``.Role`` and ``.Content``); a GGUF carries the model's Jinja template.
This module compiles the subset of Jinja that chat templates use into Go:
loops over ``messages``, ``if``/``elif`` on roles and ``loop.first``/``last``,
``set`` of strings, concatenation, ``trim``, ``bos_token``/``eos_token``.

It partially evaluates what Forge knows in advance: conversations have the
roles system, user and assistant only and never tools, so tool branches fold
away; branches that only ``raise_exception`` (input validation) are dropped.
Anything else raises :class:`TemplateError` naming the construct, so a user can
pass a Go template by hand instead. :mod:`forge_ollama.gotemplate` renders the
result, so the deploy step checks that both templates give the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2
from jinja2 import nodes

from forge_ollama.jinja_expr import Expressions
from forge_ollama.jinja_values import (
    FORGE_ROLES,
    MANUAL_HINT,
    RAISE,
    RAISED,
    Go,
    GoTemplate,
    Loop,
    TemplateError,
    Text,
    describe,
    go_arg,
    go_quote,
    is_const,
    stringish,
    unparen,
)

__all__ = ["FORGE_ROLES", "GoTemplate", "TemplateError", "translate_chat_template"]

#: Jinja's ``add_generation_prompt`` is "the assistant speaks next": in Ollama,
#: the last message is not the assistant's (a last assistant message is continued).
GENERATION_PRELUDE = (
    '{{ $gen := true }}{{ range $.Messages }}{{ $gen = ne .Role "assistant" }}{{ end }}'
)
_BRANCH_ACTIONS = ("{{ if ", "{{ else", "{{ end }}")


class Translator(Expressions):
    """One translation: walks the Jinja tree and writes Go template text."""

    def __init__(self, bos_token: str, eos_token: str, roles: Sequence[str]) -> None:
        self.roles = tuple(roles)
        self.context: dict[str, Any] = {
            "messages": Go("$.Messages", "list"),
            "bos_token": bos_token,
            "eos_token": eos_token,
            "raise_exception": RAISE,
            # transformers and llama-cpp-python pass these as None: Forge sends no tools
            "tools": None,
            "documents": None,
        }
        self.out: list[str] = []
        self.notes: list[str] = []
        self.frames: list[dict[str, Any]] = [{}]  # Jinja scopes: the top and each loop body
        self.frame_depth: list[int] = [1]  # Go scopes open when each frame began
        self.scopes: list[int] = [0]  # the Go scopes (if/range bodies) we are inside
        self.var_scope: dict[str, int] = {}  # Go variable → the scope that declared it
        self.next_scope = 1
        self.loops = 0
        self.uses_generation_prompt = False

    # ------------------------------------------------------------------ output

    def emit_text(self, text: str) -> None:
        """Literal text (quoted when it contains Go's own delimiters)."""
        self.out.append("{{ " + go_quote(text) + " }}" if "{{" in text else text)

    def emit_value(self, node: nodes.Node, value: Any) -> None:
        """What ``{{ expression }}`` prints."""
        if value is RAISED:
            raise self.fail(node, "raise_exception outside a validation branch")
        if isinstance(value, Go) and value.kind == "bool":
            raise self.fail(node, "printing a boolean (Jinja prints True, Go prints true)")
        for part in self.pieces(node, value):
            if isinstance(part, Go):
                self.out.append("{{ " + part.expr + " }}")
            else:
                self.emit_text(part)

    # ------------------------------------------------------------------ statements

    def body(self, statements: Sequence[nodes.Node]) -> None:
        """Translate statements in the current scope."""
        for statement in statements:
            if isinstance(statement, nodes.Output):
                for child in statement.nodes:
                    if isinstance(child, nodes.TemplateData):
                        self.emit_text(child.data)
                    else:
                        self.emit_value(child, self.expr(child))
            elif isinstance(statement, nodes.If):
                self.if_(statement)
            elif isinstance(statement, nodes.For):
                self.for_(statement)
            elif isinstance(statement, nodes.Assign):
                self.assign(statement)
            else:
                raise self.fail(statement, f"the {type(statement).__name__} statement")

    def scoped(self, statements: Sequence[nodes.Node]) -> None:
        """A Go ``if``/``range`` body: a new scope for ``:=`` variables."""
        self.scopes.append(self.next_scope)
        self.next_scope += 1
        try:
            self.body(statements)
        finally:
            self.scopes.pop()

    @staticmethod
    def raises_only(statements: Sequence[nodes.Node]) -> bool:
        """A branch that only validates the input (``raise_exception``)."""
        raised = False
        for statement in statements:
            if not isinstance(statement, nodes.Output):
                return False
            for child in statement.nodes:
                if isinstance(child, nodes.TemplateData) and not child.data.strip():
                    continue
                if not (
                    isinstance(child, nodes.Call)
                    and isinstance(child.node, nodes.Name)
                    and child.node.name == "raise_exception"
                ):
                    return False
                raised = True
        return raised

    def condition(self, test: nodes.Node) -> Any:
        """A branch condition: a constant, or a Go boolean value."""
        value = self.expr(test)
        if isinstance(value, Text):  # a text with a literal part is never empty
            if not any(isinstance(p, str) and p for p in value.parts):
                raise self.fail(test, "a condition on text known only at render time")
            return True
        if not (is_const(value) or isinstance(value, Go)):
            raise self.fail(test, f"the condition {describe(value)}")
        return value

    def if_(self, node: nodes.If) -> None:
        """``if``/``elif``/``else``: constant branches fold, dead ``elif``s go."""
        branches = [(node.test, node.body), *((e.test, e.body) for e in node.elif_)]
        opened, covered, start = False, set[str](), len(self.out)
        for test, statements in branches:
            if self.raises_only(statements):
                self.note("input validation (raise_exception) is not carried over")
                continue
            value = self.condition(test)
            if is_const(value):
                if not value:
                    continue
                if not opened:  # always taken: no Go `if` needed
                    self.body(statements)
                    return
                self.out.append("{{ else }}")
                self.scoped(statements)
                self.out.append("{{ end }}")
                return
            cases = set(value.disjuncts or (value.expr,))
            if cases <= covered:
                continue  # an earlier branch already takes every case this one would
            self.out.append(("{{ else if " if opened else "{{ if ") + unparen(value.expr) + " }}")
            covered |= cases
            opened = True
            self.scoped(statements)
        if node.else_ and not self.raises_only(node.else_):
            if opened:
                self.out.append("{{ else }}")
                self.scoped(node.else_)
            else:
                self.body(node.else_)
        if opened:
            self.out.append("{{ end }}")
            if all(chunk.startswith(_BRANCH_ACTIONS) for chunk in self.out[start:]):
                del self.out[start:]  # nothing is printed in any branch: drop the `if`

    def for_(self, node: nodes.For) -> None:
        """``for message in messages`` → ``range $i, $message := $.Messages``."""
        if node.else_ or node.test is not None or node.recursive:
            raise self.fail(node, "a for loop with else, a filter or recursion")
        if not isinstance(node.target, nodes.Name):
            raise self.fail(node, "unpacking in a for loop")
        items = self.expr(node.iter)
        if is_const(items) and not items:
            return  # looping over nothing (tools, tool_calls: Forge sends none)
        if not (isinstance(items, Go) and items.kind == "list"):
            raise self.fail(node, f"a loop over {describe(items)} (only messages are supported)")
        self.loops += 1
        index = "$i" if self.loops == 1 else f"$i{self.loops}"
        variable = f"${node.target.name}"
        self.out.append(f"{{{{ range {index}, {variable} := {items.expr} }}}}")
        self.frames.append({node.target.name: Go(variable, "msg"), "loop": Loop(index, items.expr)})
        self.frame_depth.append(len(self.scopes) + 1)
        try:
            self.scoped(node.body)
        finally:
            self.frames.pop()
            self.frame_depth.pop()
        self.out.append("{{ end }}")

    def assign(self, node: nodes.Assign) -> None:
        """``set``: strings become Go variables; other values are bound by name."""
        if not isinstance(node.target, nodes.Name):
            raise self.fail(node, "set with unpacking or namespaces")
        name, value = node.target.name, self.expr(node.node)
        frame = self.frames[-1]
        if not stringish(value):
            if len(self.scopes) > self.frame_depth[-1]:
                raise self.fail(node, f"a set of {name!r} to a non-string inside an if")
            frame[name] = value
            return
        variable = f"${name}"
        known = frame.get(name)
        if isinstance(known, Go) and known.expr == variable:
            if self.var_scope[variable] not in self.scopes:
                raise self.fail(node, f"{name!r} is set in one branch and used in another")
            if go_arg(value) != variable:
                self.out.append(f"{{{{ {variable} = {unparen(go_arg(value))} }}}}")
            return
        if variable.startswith(("$i", "$gen")) or variable in self.var_scope:
            raise self.fail(node, f"the variable name {name!r} (already used)")
        self.out.append(f"{{{{ {variable} := {unparen(go_arg(value))} }}}}")
        self.var_scope[variable] = self.scopes[-1]
        frame[name] = Go(variable, "str")

    def translate(self, tree: nodes.Template) -> GoTemplate:
        """The whole template, with the generation-prompt prelude when it is used."""
        self.body(tree.body)
        text = "".join(self.out)
        if self.uses_generation_prompt:
            text = GENERATION_PRELUDE + text
        return GoTemplate(text, self.notes)


def jinja_environment() -> jinja2.Environment:
    """The environment Hugging Face and llama-cpp-python render chat templates in."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    environment.globals["raise_exception"] = raise_exception
    return environment


def render_jinja(
    source: str,
    messages: Sequence[dict[str, str]],
    *,
    add_generation_prompt: bool,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render a chat template the way transformers' ``apply_chat_template`` does."""
    template = jinja_environment().from_string(source)
    return template.render(
        messages=list(messages),
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
        tools=None,
        documents=None,
    )


def translate_chat_template(
    source: str,
    *,
    bos_token: str = "",
    eos_token: str = "",
    roles: Sequence[str] = FORGE_ROLES,
) -> GoTemplate:
    """Translate a Jinja chat template into an Ollama Go template (or raise TemplateError)."""
    try:
        tree = jinja_environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"the chat template is not valid Jinja (line {exc.lineno}: {exc.message}); "
            f"{MANUAL_HINT}"
        ) from exc
    return Translator(bos_token, eos_token, roles).translate(tree)


#: Conversations both templates render in :func:`check_translation`.
PROBE_CONVERSATIONS: tuple[tuple[dict[str, str], ...], ...] = (
    ({"role": "user", "content": "What does `add` return?"},),
    (
        {"role": "system", "content": "You answer questions about the repository."},
        {"role": "user", "content": "Where is {{ config }} read?"},
    ),
    (
        {"role": "system", "content": "S"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "an answer\nover two lines"},
        {"role": "user", "content": "second"},
    ),
    (
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": "answer"},
    ),
)


def check_translation(
    jinja_source: str,
    go_source: str,
    *,
    bos_token: str = "",
    eos_token: str = "",
    system: str | None = None,
) -> None:
    """Raise TemplateError unless both templates render the probe conversations alike.

    The Jinja side gets what Ollama gives its template: the default ``system``
    prepended when a conversation has none, and a generation prompt unless the
    last message is the assistant's.
    """
    from forge_ollama.gotemplate import GoTemplateError, ollama_prompt

    for conversation in PROBE_CONVERSATIONS:
        messages = [dict(m) for m in conversation]
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        expected = render_jinja(
            jinja_source,
            messages,
            add_generation_prompt=messages[-1]["role"] != "assistant",
            bos_token=bos_token,
            eos_token=eos_token,
        )
        try:
            actual = ollama_prompt(go_source, messages)
        except GoTemplateError as exc:
            raise TemplateError(f"the Ollama template does not render: {exc}") from exc
        if actual != expected:
            raise TemplateError(
                "the Ollama template renders a different prompt than the chat template "
                f"for {[m['role'] for m in messages]}:\n  chat template: {expected!r}\n"
                f"  Ollama:        {actual!r}\n{MANUAL_HINT}"
            )

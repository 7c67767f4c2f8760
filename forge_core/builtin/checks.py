"""The built-in validation checks: schema, length, grounding and secrets.

Registered through ``register_validation_checks`` like any plugin's checks, so
``validation.disabled_checks`` can turn each off by name.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from forge_core.contracts import Example
from forge_core.hookspecs import hookimpl
from forge_core.validation import (
    ValidationCheck,
    ValidationContext,
    final_answer,
    quotes,
)


def check_schema(example: Example, context: ValidationContext) -> str | None:
    """Roles in order (optional system, user, assistant last), no empty message."""
    roles = [m.role for m in example.messages]
    if roles and roles[0] == "system":
        roles = roles[1:]
    if len(roles) < 2 or roles[-1] != "assistant" or roles[-2] != "user":
        return "schema: messages must end with a user turn then the assistant's answer"
    if any(not m.content.strip() for m in example.messages):
        return "schema: empty message"
    if final_answer(example.messages[-1].content) is None:
        return "schema: the answer has no <ANSWER>: line"
    return None


def check_length(example: Example, context: ValidationContext) -> str | None:
    """Total tokens (target tokenizer when known) within the configured bounds."""
    tokens = sum(context.count_tokens(m.content) for m in example.messages)
    if tokens < context.settings.min_tokens:
        return "length: fewer tokens than validation.min_tokens"
    if tokens > context.settings.max_tokens:
        return (
            "length: more tokens than validation.max_tokens "
            "(or train.max_seq_len less the chat template's own tokens)"
        )
    return None


def check_grounded(example: Example, context: ValidationContext) -> str | None:
    """Every quoted span is verbatim in the oracle (or a supporting unit) and in the context."""
    answer = example.messages[-1].content
    spans = quotes(answer)
    if not example.oracle_in_context:
        return "grounding: quotes although the oracle is absent" if spans else None
    unit = context.units.get(example.oracle_id)
    if unit is None:
        return "grounding: the oracle unit is not among the mined units"
    evidence = [unit] + [context.units[i] for i in example.support_ids if i in context.units]
    texts = [text for u in evidence for text in (u.source, u.docstring or "")]
    prompt = example.messages[-2].content
    for span in spans:
        if not any(span in text for text in texts):
            return "grounding: a quote is not verbatim in the oracle"
        if span not in prompt:
            return "grounding: a quote is not in the context given"
    return None


@dataclass(frozen=True)
class SecretPattern:
    """One kind of secret: its name, its regex and the hints that must precede a search."""

    name: str
    regex: re.Pattern[str]
    hints: tuple[str, ...] = ()


@cache
def secret_patterns() -> tuple[list[SecretPattern], re.Pattern[str]]:
    """The secret patterns of ``data/secret_patterns.toml`` and the placeholder pattern."""
    text = resources.files("forge_core").joinpath("data/secret_patterns.toml").read_text("utf-8")
    data = tomllib.loads(text)
    patterns = [
        SecretPattern(p["name"], re.compile(p["regex"]), tuple(p.get("hints", ())))
        for p in data["pattern"]
    ]
    return patterns, re.compile(data["placeholders"]["regex"])


def find_secret(text: str) -> str | None:
    """The name of the first kind of secret found in ``text``, or None."""
    patterns, placeholder = secret_patterns()
    folded: str | None = None
    for pattern in patterns:
        if pattern.hints:
            folded = text.casefold() if folded is None else folded
            if not any(hint in folded for hint in pattern.hints):
                continue
        for match in pattern.regex.finditer(text):
            value = match.group(match.lastindex or 0)
            if pattern.name == "password in assignment" and placeholder.match(value):
                continue
            return pattern.name
    return None


def check_secrets(example: Example, context: ValidationContext) -> str | None:
    """No private key, cloud or API token, or literal password in any message."""
    for message in example.messages:
        found = find_secret(message.content)
        if found:
            return f"secret: {found}"
    return None


CHECKS = [
    ValidationCheck("schema", check_schema.__doc__ or "", check_schema),
    ValidationCheck("secrets", check_secrets.__doc__ or "", check_secrets),
    ValidationCheck("length", check_length.__doc__ or "", check_length),
    ValidationCheck("grounded", check_grounded.__doc__ or "", check_grounded),
]


@hookimpl
def register_validation_checks() -> list[ValidationCheck]:
    """The built-in checks, in the order they run."""
    return list(CHECKS)

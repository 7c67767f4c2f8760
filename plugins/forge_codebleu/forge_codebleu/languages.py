"""The languages CodeBLEU reads: their tree-sitter grammar, keywords and data-flow rules.

Everything language-specific is data: ``keywords/<name>.txt`` (one keyword a line, ``#``
comments) and ``languages/<name>.toml``, whose keys mean:

* ``grammar``: the grammar wheel's module (``tree_sitter_python``), whose ``language()``
  tree-sitter loads; ``fence_tags``: the info strings of a fenced code block in this language.
* ``comments``: node types dropped from every component.
* ``unordered``: statement sequences (module, block, ...) whose children the AST match
  compares as a multiset, so reordering statements keeps the syntax score.
* ``[dataflow]``: ``variables`` (leaf types that name a variable), ``ignored_names`` (Go's
  ``_``), ``not_variable_fields`` (``parent.field`` positions whose identifier is not a
  variable, e.g. ``attribute.attribute``), ``not_variable_subtrees`` (type annotations),
  ``sequences`` (tuple/list nodes paired element-wise in ``a, b = b, a``),
  ``comprehensions`` (their clauses are read before their body).
* ``[dataflow.through]``: assignment targets that write through an object
  (``obj.attr = v``): the named field holds the variable written, the rest is read.
* ``[dataflow.named]``: nodes whose target is one child only (``import a as b`` defines
  ``b``): a field name, or ``#N`` for the N-th named child; the first present wins.
* ``[[dataflow.definition]]``: the nodes that define variables: ``target`` (a field,
  ``@self`` for every child, or ``#N``), optional ``value`` (the expression read),
  ``reads_target`` (augmented assignments read their target too) and ``plain_operator``
  (when set, the target is read unless the node's operator is exactly this one).
"""

from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import tree_sitter

__all__ = [
    "LANGUAGES",
    "CodeLanguage",
    "DefinitionRule",
    "code_language",
    "parse",
]

#: The languages with a data file under ``languages/``.
LANGUAGES: tuple[str, ...] = ("python", "javascript", "go")


@dataclass(frozen=True)
class DefinitionRule:
    """A node type that defines variables (see the module docstring)."""

    node: str
    target: str
    value: str | None = None
    reads_target: bool = False
    plain_operator: str | None = None


@dataclass(frozen=True)
class CodeLanguage:
    """What CodeBLEU needs to know about one language."""

    name: str
    grammar: str
    fence_tags: frozenset[str]
    keywords: frozenset[str]
    comments: frozenset[str]
    unordered: frozenset[str]
    variables: frozenset[str]
    ignored_names: frozenset[str]
    not_variable_fields: frozenset[tuple[str, str]]
    not_variable_subtrees: frozenset[str]
    sequences: frozenset[str]
    comprehensions: frozenset[str]
    through: dict[str, str]
    named: dict[str, tuple[str, ...]]
    definitions: dict[str, DefinitionRule]


def _data_text(folder: str, filename: str) -> str:
    return resources.files("forge_codebleu").joinpath(folder, filename).read_text("utf-8")


def _keywords(name: str) -> frozenset[str]:
    lines = (line.strip() for line in _data_text("keywords", f"{name}.txt").splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _field_pair(text: str) -> tuple[str, str]:
    parent, _, field = text.partition(".")
    if not parent or not field:
        raise ValueError(f"not_variable_fields: {text!r} is not `parent_type.field`")
    return parent, field


def _from_table(table: dict[str, Any], keywords: frozenset[str]) -> CodeLanguage:
    flow: dict[str, Any] = table.get("dataflow", {})
    rules = [DefinitionRule(**rule) for rule in flow.get("definition", [])]
    return CodeLanguage(
        name=table["name"],
        grammar=table["grammar"],
        fence_tags=frozenset(table.get("fence_tags", [table["name"]])),
        keywords=keywords,
        comments=frozenset(table.get("comments", [])),
        unordered=frozenset(table.get("unordered", [])),
        variables=frozenset(flow.get("variables", ["identifier"])),
        ignored_names=frozenset(flow.get("ignored_names", [])),
        not_variable_fields=frozenset(_field_pair(t) for t in flow.get("not_variable_fields", [])),
        not_variable_subtrees=frozenset(flow.get("not_variable_subtrees", [])),
        sequences=frozenset(flow.get("sequences", [])),
        comprehensions=frozenset(flow.get("comprehensions", [])),
        through=dict(flow.get("through", {})),
        named={node: tuple(fields) for node, fields in flow.get("named", {}).items()},
        definitions={rule.node: rule for rule in rules},
    )


@cache
def code_language(name: str) -> CodeLanguage | None:
    """The language called ``name`` (case-insensitive), or None when CodeBLEU lacks it."""
    key = name.strip().lower()
    if key not in LANGUAGES:
        return None
    table = tomllib.loads(_data_text("languages", f"{key}.toml"))
    return _from_table(table, _keywords(key))


@cache
def _parser(name: str) -> tree_sitter.Parser:
    language = code_language(name)
    if language is None:
        raise KeyError(f"CodeBLEU has no grammar for {name!r} (known: {', '.join(LANGUAGES)})")
    grammar = importlib.import_module(language.grammar)
    return tree_sitter.Parser(tree_sitter.Language(grammar.language()))


def parse(code: str, language: str) -> tuple[tree_sitter.Node, bytes]:
    """Parse ``code`` with the language's grammar: the root node and the source bytes."""
    source = code.encode("utf-8")
    return _parser(language).parse(source).root_node, source

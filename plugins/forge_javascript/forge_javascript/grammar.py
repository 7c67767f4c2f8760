"""The tree-sitter JavaScript grammar (JSX included) and the numbers of the node kinds
the unit finder tests on every node it visits (``Node.kind_id`` costs half of
``Node.type``, which makes a new string per call)."""

from __future__ import annotations

import functools

import tree_sitter_javascript
from tree_sitter import Language

from forge_core.codeinfo import kind_ids

__all__ = ["KIND", "javascript_language"]


@functools.cache
def javascript_language() -> Language:
    """The tree-sitter JavaScript grammar (JSX included)."""
    return Language(tree_sitter_javascript.language())


#: Node kind → its number (``Node.kind_id``).
KIND = kind_ids(
    javascript_language(),
    "call_expression",
    "function_declaration",
    "generator_function_declaration",
    "class_declaration",
    "export_statement",
    "import_statement",
    "lexical_declaration",
    "variable_declaration",
    "expression_statement",
)

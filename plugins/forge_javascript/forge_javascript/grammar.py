"""The tree-sitter JavaScript grammar (JSX included) and the numbers of the node kinds
the unit finder tests on every node it visits (``Node.kind_id`` costs half of
``Node.type``, which makes a new string per call)."""

from __future__ import annotations

import functools

import tree_sitter_javascript
from tree_sitter import Language

from forge_core.codeinfo import kind_ids

__all__ = ["FUNCTION_DECLARATIONS", "KIND", "VARIABLE_DECLARATIONS", "javascript_language"]


@functools.cache
def javascript_language() -> Language:
    """The tree-sitter JavaScript grammar (JSX included)."""
    return Language(tree_sitter_javascript.language())


#: Function declarations (statements).
FUNCTION_DECLARATIONS = frozenset({"function_declaration", "generator_function_declaration"})
#: Variable declarations whose declarators may bind units.
VARIABLE_DECLARATIONS = frozenset({"lexical_declaration", "variable_declaration"})
#: Node kind → its number (``Node.kind_id``).
KIND = kind_ids(
    javascript_language(),
    *sorted(FUNCTION_DECLARATIONS | VARIABLE_DECLARATIONS),
    "call_expression",
    "class_declaration",
    "export_statement",
    "import_statement",
    "expression_statement",
)

"""The tree-sitter Go grammar and the numbers of the node kinds and fields that the
reference scan reads on every call, selector and qualified type (``Node.kind_id`` and
``child_by_field_id`` cost half of ``Node.type`` and ``child_by_field_name``)."""

from __future__ import annotations

from functools import lru_cache

import tree_sitter_go
from tree_sitter import Language

from forge_core.codeinfo import field_ids, kind_ids

__all__ = ["FIELD", "KIND", "go_language"]


@lru_cache(maxsize=1)
def go_language() -> Language:
    """The tree-sitter Go grammar, loaded once."""
    return Language(tree_sitter_go.language())


#: Node kind → its number (``Node.kind_id``).
KIND = kind_ids(
    go_language(),
    "call_expression",
    "selector_expression",
    "qualified_type",
    "type_conversion_expression",
    "identifier",
    "generic_type",
    "type_identifier",
)
#: Field name → its number (``Node.child_by_field_id``).
FIELD = field_ids(go_language(), "function", "operand", "field", "package", "name", "type")

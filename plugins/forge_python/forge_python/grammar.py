"""The tree-sitter Python grammar, and the numbers it gives node kinds and fields.

Hot loops compare ``Node.kind_id`` with these numbers and look children up by field
id: ``Node.type`` builds a new string per call and ``child_by_field_name`` looks the
name up every time, each about twice the cost (tens of thousands of units per run).
"""

from __future__ import annotations

from functools import cache

import tree_sitter_python
from tree_sitter import Language

__all__ = ["FIELD", "KIND", "python_language"]


@cache
def python_language() -> Language:
    """The tree-sitter Python grammar."""
    return Language(tree_sitter_python.language())


def _kind_ids(*names: str) -> dict[str, int]:
    """The number of each kind this grammar has (a kind it lacks is left out); a kind
    spelled with punctuation (``:``) is an anonymous node, a word a named one."""
    language = python_language()
    ids = {name: language.id_for_node_kind(name, name[0].isalpha()) for name in names}
    return {name: number for name, number in ids.items() if number is not None}


def _field_ids(*names: str) -> dict[str, int]:
    """The number of each field (every one must exist)."""
    language = python_language()
    ids = {name: language.field_id_for_name(name) for name in names}
    missing = [name for name, number in ids.items() if number is None]
    if missing:
        raise RuntimeError(f"tree-sitter-python has no field {missing}: update forge-python")
    return ids  # type: ignore[return-value]


#: Node kind → its number (``Node.kind_id``), for the kinds the plugin tests
#: (``except_group_clause`` only where the grammar version has it).
KIND = _kind_ids(
    "function_definition",
    "class_definition",
    "decorated_definition",
    "expression_statement",
    "comment",
    "line_continuation",
    "block",
    "if_statement",
    "elif_clause",
    "else_clause",
    "try_statement",
    "except_clause",
    "except_group_clause",
    "finally_clause",
    "with_statement",
    "for_statement",
    "while_statement",
    "match_statement",
    "case_clause",
    "ERROR",
    ":",
)
#: Field name → its number (``Node.child_by_field_id``).
FIELD = _field_ids("name", "body", "definition")

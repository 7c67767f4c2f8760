"""The tree-sitter Python grammar, and the numbers it gives node kinds and fields.

Hot loops compare ``Node.kind_id`` with these numbers and look children up by field
id: ``Node.type`` builds a new string per call and ``child_by_field_name`` looks the
name up every time, each about twice the cost (tens of thousands of units per run).
"""

from __future__ import annotations

from functools import cache

import tree_sitter_python
from tree_sitter import Language

from forge_core.codeinfo import field_ids, kind_ids

__all__ = [
    "COMPOUND_TYPES",
    "DEFINITION_TYPES",
    "FIELD",
    "IMPORT_TYPES",
    "KIND",
    "TRAILING_EXTRAS",
    "python_language",
]


@cache
def python_language() -> Language:
    """The tree-sitter Python grammar."""
    return Language(tree_sitter_python.language())


#: Definitions that become units (decorated or not).
DEFINITION_TYPES = frozenset({"function_definition", "class_definition"})
#: Statements (and their clauses) whose blocks may hold module- or class-level definitions.
COMPOUND_TYPES = frozenset(
    {
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
    }
)
#: Import statements (their modules and names are the file's imports).
IMPORT_TYPES = frozenset({"import_statement", "import_from_statement", "future_import_statement"})
#: Nodes tree-sitter may leave at the end of a block that ``ast`` does not count.
TRAILING_EXTRAS = frozenset({"comment", "line_continuation"})
#: Node kind → its number (``Node.kind_id``), for the kinds the plugin tests
#: (``except_group_clause`` only where the grammar version has it).
KIND = kind_ids(
    python_language(),
    *sorted(DEFINITION_TYPES | COMPOUND_TYPES | IMPORT_TYPES | TRAILING_EXTRAS),
    "decorated_definition",
    "expression_statement",
    ":",
)
#: Field name → its number (``Node.child_by_field_id``).
FIELD = field_ids(python_language(), "name", "body", "definition")

"""CodeBLEU's syntactic component: the share of the reference's AST subtrees found in the candidate.

A subtree is a named tree-sitter node with at least one named child, written as its node
type followed by its named children's forms: ``(return_statement (binary_operator
(identifier) (integer)))``. Leaves (identifiers, literals) enter their parent's form by
type only, so names and values never count, as in the paper; anonymous nodes (punctuation,
operators, keywords) and comments are left out. The children of a statement sequence (the
language's ``unordered`` node types: module, block, ...) form a multiset, so reordering
statements keeps every subtree. Counts are clipped: a subtree that occurs twice in the
reference matches twice only if the candidate has it twice.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from forge_codebleu.languages import CodeLanguage
from forge_codebleu.multiset import clipped_share

if TYPE_CHECKING:
    import tree_sitter

__all__ = ["SubtreeIndex", "syntax_match"]


class SubtreeIndex:
    """Interns subtree forms as integers, so two trees' subtrees compare by number."""

    def __init__(self, language: CodeLanguage) -> None:
        self.language = language
        self._ids: dict[tuple[str, tuple[int, ...]], int] = {}

    def _intern(self, node_type: str, children: tuple[int, ...]) -> int:
        key = (node_type, children)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._ids)
        return found

    def subtrees(self, root: tree_sitter.Node) -> Counter[int]:
        """The multiset of the forms of every subtree under ``root`` (itself included)."""
        counts: Counter[int] = Counter()
        forms: dict[int, int] = {}  # node id -> form, filled bottom-up
        stack: list[tuple[tree_sitter.Node, bool]] = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            children = [
                child for child in node.named_children if child.type not in self.language.comments
            ]
            if not children_done:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(children))
                continue
            child_forms = [forms.pop(child.id) for child in children]
            if node.type in self.language.unordered:
                child_forms.sort()
            form = self._intern(node.type, tuple(child_forms))
            forms[node.id] = form
            if children:
                counts[form] += 1
        return counts


def syntax_match(
    candidate: tree_sitter.Node, reference: tree_sitter.Node, language: CodeLanguage
) -> float | None:
    """Share of the reference's subtrees present in the candidate (clipped counts).

    None when the reference has no subtree (it is a lone leaf, or empty).
    """
    index = SubtreeIndex(language)
    return clipped_share(index.subtrees(reference), index.subtrees(candidate))

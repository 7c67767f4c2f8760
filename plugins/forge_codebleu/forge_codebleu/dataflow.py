"""CodeBLEU's semantic part: the share of the reference's data-flow edges found in the candidate.

The data-flow graph follows GraphCodeBERT's, as CodeBLEU does, built from the tree-sitter
tree with the rules of the language's data file (see :mod:`forge_codebleu.languages`).
Walking the code in source order:

1. A definition (an assignment, a parameter, a ``for`` target, an import, a function's
   name, ...) first reads its value expression, then defines its targets. It adds one
   edge ``computedFrom(t, s)`` for each target ``t`` and each distinct variable ``s`` of
   the value (element-wise for ``a, b = b, a``). An augmented definition (``x += y``,
   ``i++``) also reads its target and adds ``computedFrom(x, x)``.
2. Every read of a variable that is already defined adds ``comesFrom(v, v)``: the value
   read comes from an earlier definition of ``v``.
3. Only the variables that occur in an edge are then numbered, in the order of the
   edges (each edge's target, then its source), as the reference CodeBLEU numbers only
   the variables of its edges: a consistent renaming keeps every edge, and a name in no
   edge (an unused ``import os``, an undefined name) shifts no number.

Writing through an object (``obj.attr = v``, ``a[i] = v``) defines ``obj``/``a`` and reads
the rest. The snippet is one flat scope (a name defined anywhere earlier counts as
defined), and loops are read once, in order: the graph is a def-use approximation, not a
compiler's. The score is the clipped share of the reference's edges that the candidate
has; a reference without edges has no data-flow score (None).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from forge_codebleu.languages import CodeLanguage, DefinitionRule
from forge_codebleu.multiset import clipped_share

if TYPE_CHECKING:
    import tree_sitter

__all__ = ["COMES_FROM", "COMPUTED_FROM", "DataFlowBuilder", "data_flow_graph", "dataflow_match"]

COMES_FROM = "comesFrom"
COMPUTED_FROM = "computedFrom"

#: One normalised edge: (relation, number of the target variable, number of the source).
Edge = tuple[str, int, int]


class DataFlowBuilder:
    """Collects the data-flow edges of one parsed snippet, by variable name."""

    def __init__(self, language: CodeLanguage, source: bytes) -> None:
        self.language = language
        self.source = source
        self.defined: set[str] = set()
        self.edges: list[tuple[str, str, str]] = []

    # ------------------------------------------------------------------ node helpers

    def _name(self, node: tree_sitter.Node) -> str:
        """The variable's name as written."""
        return self.source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    def _is_variable(self, node: tree_sitter.Node) -> bool:
        if node.type not in self.language.variables:
            return False
        return self._name(node) not in self.language.ignored_names

    def _kids(self, node: tree_sitter.Node) -> list[tuple[str | None, tree_sitter.Node]]:
        """Named children with their field, minus comments and non-variable positions."""
        kids = []
        for index, child in enumerate(node.children):
            if not child.is_named or child.type in self.language.comments:
                continue
            field = node.field_name_for_child(index)
            if field is not None and (node.type, field) in self.language.not_variable_fields:
                continue
            kids.append((field, child))
        return kids

    def _resolve(self, node: tree_sitter.Node, where: str | None) -> list[tree_sitter.Node]:
        """The children a rule names: a field, ``@self`` (all of them) or ``#N``."""
        if where is None:
            return []
        kids = self._kids(node)
        if where == "@self":
            return [child for _, child in kids]
        if where.startswith("#"):
            position = int(where[1:])
            return [kids[position][1]] if position < len(kids) else []
        return [child for field, child in kids if field == where]

    def _items(self, nodes: list[tree_sitter.Node]) -> list[tree_sitter.Node]:
        """A lone tuple/list node stands for its elements (for element-wise pairing)."""
        if len(nodes) == 1 and nodes[0].type in self.language.sequences:
            return [child for _, child in self._kids(nodes[0])]
        return nodes

    def _variables_in(self, node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
        """Every variable occurrence under ``node``, in source order."""
        if node.type in self.language.not_variable_subtrees:
            return
        if self._is_variable(node):
            yield node
            return
        for _, child in self._kids(node):
            yield from self._variables_in(child)

    # ------------------------------------------------------------------ the walk

    def walk(self, node: tree_sitter.Node) -> None:
        """Visit ``node`` in source order, adding the edges of its definitions and reads."""
        if node.type in self.language.comments or node.type in self.language.not_variable_subtrees:
            return
        rule = self.language.definitions.get(node.type)
        if rule is not None:
            self.define(node, rule)
            return
        if self._is_variable(node):
            self.read(node)
            return
        kids = self._kids(node)
        if node.type in self.language.comprehensions:  # `for` clauses bind before the body
            kids = [k for k in kids if k[0] != "body"] + [k for k in kids if k[0] == "body"]
        for _, child in kids:
            self.walk(child)

    def read(self, node: tree_sitter.Node) -> None:
        """A read of a variable: ``comesFrom(v, v)`` when ``v`` is already defined."""
        name = self._name(node)
        if name in self.defined:
            self.edges.append((COMES_FROM, name, name))

    def targets(self, node: tree_sitter.Node) -> list[tree_sitter.Node]:
        """The variables a target expression defines; the rest of it is read."""
        language = self.language
        if node.type in language.comments or node.type in language.not_variable_subtrees:
            return []
        if self._is_variable(node):
            return [node]
        rule = language.definitions.get(node.type)
        if rule is not None:  # a nested definition: a default value, `{a = 1} = obj`
            return self.define(node, rule)
        if node.type in language.named:
            for where in language.named[node.type]:
                chosen = self._resolve(node, where)
                if chosen:
                    return self.targets(chosen[0])
            return []
        if node.type in language.through:
            written = self._resolve(node, language.through[node.type])
            for _, child in self._kids(node):
                if written and child.id != written[0].id:
                    self.walk(child)
            return self.targets(written[0]) if written else []
        return [found for _, child in self._kids(node) for found in self.targets(child)]

    def define(self, node: tree_sitter.Node, rule: DefinitionRule) -> list[tree_sitter.Node]:
        """Read the value, define the targets, add their edges, then walk the rest."""
        target_nodes = self._resolve(node, rule.target)
        value_nodes = self._resolve(node, rule.value)
        for value in value_nodes:
            self.walk(value)
        target_items, value_items = self._items(target_nodes), self._items(value_nodes)
        item_targets = [self.targets(item) for item in target_items]
        if len(target_items) == len(value_items) > 1:  # a, b = b, a
            item_sources = [list(self._variables_in(value)) for value in value_items]
        else:
            every = [found for value in value_items for found in self._variables_in(value)]
            item_sources = [every] * len(target_items)
        reads = rule.reads_target or (
            rule.plain_operator is not None and self._operator(node) != rule.plain_operator
        )
        defined: list[tree_sitter.Node] = []
        for targets, sources in zip(item_targets, item_sources, strict=True):
            for target in targets:
                name = self._name(target)
                if reads:
                    self.read(target)
                from_names = [name] if reads else []
                from_names += [self._name(source) for source in sources]
                for source_name in dict.fromkeys(from_names):  # distinct, in order
                    self.edges.append((COMPUTED_FROM, name, source_name))
            defined.extend(targets)
        self.defined.update(self._name(target) for target in defined)
        taken = {child.id for child in (*target_nodes, *value_nodes)}
        for _, child in self._kids(node):
            if child.id not in taken:
                self.walk(child)
        return defined

    def _operator(self, node: tree_sitter.Node) -> str | None:
        operator = node.child_by_field_name("operator")
        if operator is None:
            return None
        return self.source[operator.start_byte : operator.end_byte].decode("utf-8")

    # ------------------------------------------------------------------ the graph

    def normalised(self) -> Counter[Edge]:
        """The edges with their variables numbered in edge order (renaming-invariant).

        Only names that occur in an edge get a number, so a line the other snippet lacks
        shifts nothing unless it adds edges (an unused ``import os`` adds none).
        """
        number: dict[str, int] = {}
        for _, target, source in self.edges:
            number.setdefault(target, len(number))
            number.setdefault(source, len(number))
        return Counter((rel, number[target], number[source]) for rel, target, source in self.edges)


def data_flow_graph(root: tree_sitter.Node, source: bytes, language: CodeLanguage) -> Counter[Edge]:
    """The normalised data-flow edges of a parsed snippet (a multiset)."""
    builder = DataFlowBuilder(language, source)
    builder.walk(root)
    return builder.normalised()


def dataflow_match(
    candidate: tuple[tree_sitter.Node, bytes],
    reference: tuple[tree_sitter.Node, bytes],
    language: CodeLanguage,
) -> float | None:
    """Share of the reference's data-flow edges found in the candidate; None without edges.

    A tree too deep for Python's recursion limit has no data-flow score either (None): the
    component is then left out, like for a reference without data flow.
    """
    try:
        reference_edges = data_flow_graph(*reference, language)
        if not reference_edges:
            return None
        return clipped_share(reference_edges, data_flow_graph(*candidate, language))
    except RecursionError:
        return None

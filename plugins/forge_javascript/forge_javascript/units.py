"""Find the units of a JavaScript syntax tree and name them.

Naming conventions (see the README):

* declarations and functions or classes bound to a name take the bound name:
  ``function f() {}``, ``const f = () => 1``, ``let g = function h() {}`` → ``g``;
* an assignment target is kept as written: ``exports.f = …`` → ``exports.f``,
  ``module.exports.f = …`` → ``module.exports.f`` (the bare name is the last part);
* function members of an object literal bound to a name are qualified by that
  name: ``module.exports = { a() {} }`` → ``module.exports.a``, ``export default
  { a() {} }`` → ``default.a``, ``const api = { b: () => 1 }`` → ``api.b``;
* an anonymous ``export default`` function or class is named ``default``;
* class members are ``Class.member``; getters and setters take the property name
  (``Class.value``; the signature shows ``get``/``set``), private ones keep ``#``.

A function inside another unit belongs to that unit. Anonymous, unbound
functions (IIFE wrappers, callbacks) are no units: they are searched for units.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from operator import attrgetter

from tree_sitter import Node

from forge_core.codeinfo import node_text, walk
from forge_core.contracts import UnitKind
from forge_javascript.grammar import FUNCTION_DECLARATIONS, KIND, VARIABLE_DECLARATIONS

#: Function values that make a unit when bound to a name.
FUNCTION_VALUES = frozenset({"function_expression", "generator_function", "arrow_function"})
#: Nodes that name an object or class member directly.
PLAIN_KEYS = frozenset(
    {"property_identifier", "private_property_identifier", "identifier", "number"}
)
#: Import and re-export clauses: what they bind is recorded with the module.
IMPORT_CLAUSES = frozenset({"import_clause", "export_clause", "namespace_export"})
#: Parents of an identifier that is itself the bound name (default or ``* as ns``).
BINDING_PARENTS = frozenset({"import_clause", "namespace_import", "namespace_export"})
#: A node's start, read for many nodes at C speed.
_START_BYTE = attrgetter("start_byte")
#: The numbers (``Node.kind_id``) of the kinds the finder tests on every node it visits.
_DECLARED_IDS = frozenset(KIND[kind] for kind in (*FUNCTION_DECLARATIONS, "class_declaration"))
_VARIABLE_DECLARATION_IDS = frozenset(KIND[kind] for kind in VARIABLE_DECLARATIONS)
_CALL_ID = KIND["call_expression"]
_EXPORT_ID = KIND["export_statement"]
_IMPORT_ID = KIND["import_statement"]
_EXPRESSION_STATEMENT_ID = KIND["expression_statement"]


@dataclass(frozen=True)
class FoundUnit:
    """A unit located in the tree, before it becomes a ``CodeUnit``."""

    kind: UnitKind
    name: str
    qualified_name: str
    outer: Node
    """The whole unit: its span, from ``export`` to the end."""
    definition: Node
    """The function or class node (its body ends the signature)."""
    parent: str | None = None


@dataclass(frozen=True)
class ImportSite:
    """Where an import names a module or a binding, for ordering."""

    position: tuple[int, int]
    name: str


def member_key(node: Node, source: bytes) -> str | None:
    """The name of an object or class member key, or None when it has none."""
    if node.type in PLAIN_KEYS:
        return node_text(node, source)
    if node.type == "string":
        return node_text(node, source)[1:-1]
    if node.type == "computed_property_name":
        return node_text(node, source)
    return None


def dotted_name(node: Node, source: bytes) -> str | None:
    """``a.b.c`` for an identifier or a chain of plain member accesses, else None."""
    parts: list[str] = []
    current: Node | None = node
    while current is not None and current.type == "member_expression":
        prop = current.child_by_field_name("property")
        if prop is None or prop.type != "property_identifier":
            return None
        parts.append(node_text(prop, source))
        current = current.child_by_field_name("object")
    if current is None or current.type not in ("identifier", "this"):
        return None
    parts.append(node_text(current, source))
    return ".".join(reversed(parts))


def string_value(node: Node, source: bytes) -> str | None:
    """The text of a string literal (or a template without substitutions), else None."""
    if node.type == "string":
        return node_text(node, source)[1:-1]
    if node.type == "template_string" and all(
        child.type == "string_fragment" for child in node.named_children
    ):
        return node_text(node, source)[1:-1]
    return None


def module_call(node: Node, source: bytes) -> str | None:
    """The module named by ``require('x')`` or ``import('x')``, else None."""
    if node.type != "call_expression":
        return None
    callee = node.child_by_field_name("function")
    if callee is None:
        return None
    if callee.type != "import" and not (
        callee.type == "identifier" and node_text(callee, source) == "require"
    ):
        return None
    arguments = node.child_by_field_name("arguments")
    if arguments is None or arguments.type != "arguments" or not arguments.named_children:
        return None
    return string_value(arguments.named_children[0], source)


def imported_names(clause: Node, source: bytes) -> list[str]:
    """What an import clause brings in: imported names (not aliases), default, ``* as ns``."""
    names: list[str] = []
    for node in walk(clause):
        if node.type in ("import_specifier", "export_specifier"):
            name = node.child_by_field_name("name")
            if name is not None:
                names.append(string_value(name, source) or node_text(name, source))
        elif node.type == "identifier":
            parent = node.parent
            if parent is not None and parent.type in BINDING_PARENTS:
                names.append(node_text(node, source))
    return names


def outer_of(node: Node) -> Node:
    """The node itself, or the ``export`` statement around it."""
    parent = node.parent
    return parent if parent is not None and parent.type == "export_statement" else node


@dataclass(frozen=True)
class Landmarks:
    """Where the nodes that can make a unit or an import start, in order.

    Functions, classes, methods, imports, exports and ``require``/``import()`` calls:
    a subtree that holds none of them gives no unit and no import, so the walk that
    finds units can skip it.
    """

    starts: list[int]

    @classmethod
    def of(cls, nodes: list[Node]) -> Landmarks:
        """Index ``nodes`` (any order)."""
        return cls(sorted(map(_START_BYTE, nodes)))

    def inside(self, node: Node) -> bool:
        """True when a landmark starts within ``node``'s span."""
        index = bisect_left(self.starts, node.start_byte)
        return index < len(self.starts) and self.starts[index] <= node.end_byte


class UnitFinder:
    """Walks a tree once, collecting units and the file's ES imports.

    With ``landmarks`` (found with a query by the caller), the walk skips every
    subtree that holds none: nothing there can change what it finds.
    """

    def __init__(self, source: bytes, landmarks: Landmarks | None = None) -> None:
        self.source = source
        self.landmarks = landmarks
        self.units: list[FoundUnit] = []
        self.imports: list[ImportSite] = []
        """ES imports, and ``require``/``import()`` calls outside units."""

    def find(self, root: Node) -> list[FoundUnit]:
        """Every unit under ``root``, in source order."""
        stack = [root]
        landmarks = self.landmarks
        while stack:
            node = stack.pop()
            if node.kind_id == _CALL_ID:
                module = module_call(node, self.source)
                if module:
                    self.imports.append(ImportSite((node.start_byte, 0), module))
            children = self._visit(node)
            if landmarks is not None:
                children = [child for child in children if landmarks.inside(child)]
            stack.extend(reversed(children))
        return sorted(self.units, key=lambda unit: (unit.outer.start_byte, -unit.outer.end_byte))

    # ----------------------------------------------------------------- statements

    def _visit(self, node: Node) -> list[Node]:
        """Record the units ``node`` makes; return the children still to search."""
        kind = node.kind_id
        if kind in _DECLARED_IDS:
            self._add_declared(node)
            return []
        if kind == _EXPORT_ID:
            return self._visit_export(node)
        if kind == _IMPORT_ID:
            self._record_import(node)
            return []
        if kind in _VARIABLE_DECLARATION_IDS:
            return self._visit_declaration(node)
        if kind == _EXPRESSION_STATEMENT_ID:
            return self._visit_expression(node)
        return node.named_children

    def _add_declared(self, node: Node) -> None:
        """A declaration with its own name (``default`` when anonymous)."""
        name_node = node.child_by_field_name("name")
        name = node_text(name_node, self.source) if name_node is not None else "default"
        self._bind(node, name, name, outer_of(node))

    def _visit_export(self, node: Node) -> list[Node]:
        if node.child_by_field_name("source") is not None:
            self._record_import(node)
            return []
        declaration = node.child_by_field_name("declaration")
        if declaration is not None:
            return [declaration]
        value = node.child_by_field_name("value")
        if value is None:
            return []
        if value.type == "object":
            return self._object_members(value, "default")
        name_node = value.child_by_field_name("name")
        name = node_text(name_node, self.source) if name_node is not None else "default"
        return [] if self._bind(value, name, name, node) else [value]

    def _visit_declaration(self, node: Node) -> list[Node]:
        declarators = [c for c in node.named_children if c.type == "variable_declarator"]
        rest: list[Node] = []
        for declarator in declarators:
            name_node = declarator.child_by_field_name("name")
            value = declarator.child_by_field_name("value")
            if value is None:
                continue
            if name_node is None or name_node.type != "identifier":
                rest.append(value)
                continue
            name = node_text(name_node, self.source)
            outer = outer_of(node) if len(declarators) == 1 else declarator
            if value.type == "object":
                rest.extend(self._object_members(value, name))
            elif not self._bind(value, name, name, outer):
                rest.append(value)
        return rest

    def _visit_expression(self, node: Node) -> list[Node]:
        expression = node.named_child(0) if node.named_child_count else None
        if expression is None or expression.type != "assignment_expression":
            return node.named_children
        left = expression.child_by_field_name("left")
        right = expression.child_by_field_name("right")
        target = dotted_name(left, self.source) if left is not None else None
        if right is None or target is None:
            return [expression]
        if right.type == "object":
            return self._object_members(right, target)
        name = target.rsplit(".", 1)[-1]
        return [] if self._bind(right, name, target, node) else [right]

    # ----------------------------------------------------------------- members

    def _bind(self, value: Node, name: str, qualified: str, outer: Node) -> bool:
        """Add a function or class unit for ``value``; False when it is neither."""
        if value.type in FUNCTION_VALUES or value.type in FUNCTION_DECLARATIONS:
            self.units.append(FoundUnit(UnitKind.FUNCTION, name, qualified, outer, value))
            return True
        if value.type in ("class", "class_declaration"):
            self.units.append(FoundUnit(UnitKind.CLASS, name, qualified, outer, value))
            self._class_members(value, qualified)
            return True
        return False

    def _object_members(self, obj: Node, prefix: str) -> list[Node]:
        """Units for the function members of an object literal; return what is left."""
        rest: list[Node] = []
        for member in obj.named_children:
            if member.type == "method_definition":
                key = member.child_by_field_name("name")
                name = member_key(key, self.source) if key is not None else None
                if name is None:
                    rest.append(member)
                    continue
                unit = FoundUnit(UnitKind.FUNCTION, name, f"{prefix}.{name}", member, member)
                self.units.append(unit)
            elif member.type == "pair":
                rest.extend(self._object_pair(member, prefix))
            elif member.type != "comment":
                rest.append(member)
        return rest

    def _object_pair(self, pair: Node, prefix: str) -> list[Node]:
        key = pair.child_by_field_name("key")
        value = pair.child_by_field_name("value")
        if value is None:
            return []
        name = member_key(key, self.source) if key is not None else None
        if name is None:
            return [value]
        if value.type == "object":
            return self._object_members(value, f"{prefix}.{name}")
        return [] if self._bind(value, name, f"{prefix}.{name}", pair) else [value]

    def _class_members(self, node: Node, qualified: str) -> None:
        """Methods and function-valued fields of a class (nested code stays in them)."""
        body = node.child_by_field_name("body")
        if body is None:
            return
        for member in body.named_children:
            if member.type == "method_definition":
                key, definition = member.child_by_field_name("name"), member
            elif member.type == "field_definition":
                key, definition = member.child_by_field_name("property"), member
                value = member.child_by_field_name("value")
                if value is None or value.type not in FUNCTION_VALUES:
                    continue
                definition = value
            else:
                continue
            name = member_key(key, self.source) if key is not None else None
            if name is not None:
                unit = FoundUnit(
                    UnitKind.METHOD, name, f"{qualified}.{name}", member, definition, qualified
                )
                self.units.append(unit)

    # ----------------------------------------------------------------- imports

    def _record_import(self, node: Node) -> None:
        """Module specifier, then bound names, of ``import``/``export … from``."""
        position = node.start_byte
        source_node = node.child_by_field_name("source")
        module = string_value(source_node, self.source) if source_node is not None else None
        names = [module] if module else []
        for child in node.named_children:
            if child.type in IMPORT_CLAUSES:
                names.extend(imported_names(child, self.source))
        self.imports.extend(ImportSite((position, index), n) for index, n in enumerate(names))

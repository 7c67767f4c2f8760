"""The kind and field numbers the Python plugin compares with name the same nodes as the names."""

from __future__ import annotations

from forge_core.codeinfo import walk
from forge_python.grammar import FIELD, KIND
from forge_python.parser import get_parser

#: Every kind in KIND at least once (``except*`` where the grammar knows it).
SNIPPET = b"""\
from __future__ import annotations
import os  # a comment
from . import sibling

@decorator
def f(x):
    \"\"\"Doc.\"\"\"
    if x:
        pass
    elif x > 1:
        pass
    else:
        pass
    try:
        pass
    except ValueError:
        pass
    finally:
        pass
    with open(x) as handle:
        pass
    for item in x:
        pass
    while x:
        break
    match x:
        case 1:
            pass
    return \\
        x

class C:
    def m(self): ...

x = = 1
"""


def test_kind_ids_match_kind_names() -> None:
    root = get_parser().parse(SNIPPET).root_node
    seen: set[str] = set()
    for node in walk(root):
        for name, number in KIND.items():
            assert (node.type == name) == (node.kind_id == number), (name, node.type)
        seen.add(node.type)
    assert set(KIND) <= seen, f"the snippet lacks {sorted(set(KIND) - seen)}"


def test_field_ids_find_the_named_fields() -> None:
    root = get_parser().parse(SNIPPET).root_node
    definitions = [n for n in walk(root) if n.type in ("function_definition", "class_definition")]
    decorated = [n for n in walk(root) if n.type == "decorated_definition"]
    assert definitions and decorated
    for node in definitions:
        for field, number in FIELD.items():
            by_name, by_id = node.child_by_field_name(field), node.child_by_field_id(number)
            assert (by_name is None and by_id is None) or by_name == by_id, field
    assert decorated[0].child_by_field_id(FIELD["definition"]) == decorated[0].child_by_field_name(
        "definition"
    )

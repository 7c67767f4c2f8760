"""Go doc comments: the comment group directly above a declaration.

This works on the syntax tree rather than on text lines, so that a ``//`` line inside
a raw string is never taken for a comment and ``/* */`` blocks count as well.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from forge_core.codeinfo import node_text

#: Comment lines the Go toolchain reads as directives, not documentation (go/ast).
DIRECTIVE = re.compile(r"//(line |extern |export |[a-z0-9]+:[a-z0-9])")


def doc_comment(node: Node, source: bytes) -> str | None:
    """The Go doc comment of ``node``: the comments directly above it, as written.

    Each comment must start its own line, and the group must end on the line just
    above the declaration with no blank line between; the comments are joined with
    newlines and CRLF line endings become ``\\n``. A group made only of toolchain
    directives (``//go:noinline``) is not documentation and gives None.
    """
    group: list[Node] = []
    below = node
    comment = node.prev_sibling
    while (
        comment is not None
        and comment.type == "comment"
        and comment.end_point.row + 1 == below.start_point.row
        and starts_line(comment, source)
    ):
        group.append(comment)
        below, comment = comment, comment.prev_sibling
    # A CRLF file leaves `\r` at the end of each `//` comment: it is line ending, not text.
    lines = [node_text(c, source).replace("\r\n", "\n").removesuffix("\r") for c in reversed(group)]
    if all(DIRECTIVE.match(line) for line in lines):  # also true when there is no comment
        return None
    return "\n".join(lines)


def starts_line(node: Node, source: bytes) -> bool:
    """True when only whitespace precedes ``node`` on its first line."""
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    return not source[line_start : node.start_byte].strip()

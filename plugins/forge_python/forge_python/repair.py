"""Work around a tree-sitter-python bug without moving a single byte.

tree-sitter-python (0.25 at least) reads a line break inside brackets as a dedent when
the continuation line is indented less than the enclosing block
(tree-sitter/tree-sitter-python#256)::

    def f():
        total = (first +
    second)

Python ignores indentation inside brackets, but tree-sitter turns the rest of the file
into ERROR nodes. When a tree has errors, :func:`join_bracketed_lines` writes a copy for
tree-sitter alone in which every line break inside brackets (and a comment before it)
becomes spaces. Byte offsets do not move, so units are still cut from the original bytes;
only the copy's row numbers differ, which is why the parser counts rows in the original
bytes (:meth:`SourceText.row`).
"""

from __future__ import annotations

import io
import tokenize

from forge_python.source import SourceText

__all__ = ["join_bracketed_lines"]

_OPENING = frozenset("([{")
_CLOSING = frozenset(")]}")


def join_bracketed_lines(source: SourceText) -> bytes | None:
    """A same-length copy of the file with line breaks inside brackets blanked, or None.

    None when Python's tokenizer rejects the file or no line break is inside brackets.
    """
    try:
        tokens = list(tokenize.tokenize(io.BytesIO(source.data).readline))
    except (tokenize.TokenError, SyntaxError, UnicodeError, LookupError, ValueError):
        return None
    patched = bytearray(source.data)
    depth = 0
    for token in tokens:
        if token.type == tokenize.OP and token.string in _OPENING:
            depth += 1
        elif token.type == tokenize.OP and token.string in _CLOSING:
            depth = max(depth - 1, 0)
        elif depth and token.type in (tokenize.NL, tokenize.COMMENT) and token.string:
            row = token.start[0] - 1
            start = source.offset(row, token.line, token.start[1])
            newline = source.line_starts[row + 1] - 1  # this line's own `\n`
            if start <= newline < len(patched):
                patched[start : newline + 1] = b" " * (newline + 1 - start)
    return bytes(patched) if patched != source.data else None

"""The bytes of one file: its encoding, decoded slices and line numbers.

Units are cut from the original bytes by byte offset; text fields are decoded with the
file's PEP 263 encoding (a BOM or a ``coding:`` cookie, else UTF-8), undecodable bytes
replaced, so no input makes the parser fail.
"""

from __future__ import annotations

import codecs
import io
import tokenize
from bisect import bisect_right
from collections.abc import Sequence
from functools import cached_property
from itertools import accumulate
from operator import attrgetter

from forge_core.codeinfo import SyntaxNode, comment_block_above, leading_comment_block, node_text

__all__ = ["SourceText", "source_encoding", "span_of"]


def source_encoding(data: bytes) -> str:
    """The file's encoding per PEP 263 (BOM or coding cookie), or utf-8 when unusable."""
    second_line_end = data.find(b"\n", data.find(b"\n") + 1)
    if b"coding" not in data[: second_line_end if second_line_end >= 0 else len(data)]:
        return "utf-8"  # no cookie in the two lines PEP 263 reads: utf-8 (a BOM says the same)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        name = codecs.lookup(encoding).name
        # Only ASCII-compatible codecs keep tree-sitter's byte offsets and rows meaningful.
        if name in {"utf-8", "utf-8-sig"} or "\n#:".encode(name) != b"\n#:":
            return "utf-8"
    except (SyntaxError, LookupError, UnicodeError):
        return "utf-8"
    return name


#: (start_byte, end_byte) of a node, read in one call.
span_of = attrgetter("start_byte", "end_byte")


class SourceText:
    """The raw bytes of a file, how to decode slices of them, and where lines start.

    An ASCII file (most files) is decoded once: its byte offsets are also offsets in
    the text, so slices of the text replace decoding each node's bytes.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.encoding = source_encoding(data)
        self.has_bom = data.startswith(codecs.BOM_UTF8)
        self.ascii = self.encoding == "utf-8" and data.isascii()
        if self.ascii:
            self.full_text = data.decode("ascii")

    def text(self, node: SyntaxNode) -> str:
        """The decoded text of ``node``."""
        if self.ascii:
            return self.full_text[node.start_byte : node.end_byte]
        if self.encoding == "utf-8":
            return node_text(node, self.data)
        return self.span(node.start_byte, node.end_byte)

    def texts(self, spans: Sequence[tuple[int, int]]) -> list[str]:
        """The decoded texts between the (start, end) byte offsets of ``spans``, in order."""
        if self.ascii:
            text = self.full_text
            return [text[start:end] for start, end in spans]
        if self.encoding == "utf-8":
            data = self.data
            return [data[start:end].decode("utf-8", "replace") for start, end in spans]
        return [self.span(start, end) for start, end in spans]

    def span(self, start: int, end: int) -> str:
        """The decoded text between two byte offsets (undecodable bytes replaced)."""
        if self.ascii:
            return self.full_text[start:end]
        return self.data[start:end].decode(self.encoding, "replace")

    @cached_property
    def full_text(self) -> str:
        """The whole file, decoded, without a byte-order mark."""
        return self.span(0, len(self.data)).removeprefix("\ufeff")

    @cached_property
    def lines(self) -> list[str]:
        """The decoded lines, split on ``\\n`` only (as tree-sitter and ``ast`` count rows)."""
        return self.full_text.split("\n")

    @cached_property
    def line_starts(self) -> list[int]:
        """Byte offset where each 0-based row starts (plus one past the end)."""
        lengths_with_newline = map((1).__add__, map(len, self.data.split(b"\n")))
        return list(accumulate(lengths_with_newline, initial=0))

    def comments_above(self, offset: int, row: int, prefixes: tuple[str, ...]) -> str | None:
        """The comment lines directly above 0-based ``row``, the row of byte ``offset``
        (see :func:`~forge_core.codeinfo.leading_comment_block`).

        An ASCII file's lines are read from its text back from ``offset``; only other
        files split the text into :attr:`lines`.
        """
        if self.ascii:
            text = self.full_text
            return comment_block_above(text, text.rfind("\n", 0, offset) + 1, prefixes)
        return leading_comment_block(self.lines, row, prefixes)

    def row(self, offset: int) -> int:
        """The 0-based row that holds byte ``offset``."""
        return bisect_right(self.line_starts, offset) - 1

    def offset(self, row: int, line: str, column: int) -> int:
        """Byte offset of character ``column`` in 0-based ``row`` whose decoded text is ``line``."""
        encoded = len(line[:column].encode(self.encoding, errors="replace"))
        bom = len(codecs.BOM_UTF8) if row == 0 and self.has_bom else 0
        return self.line_starts[row] + bom + encoded

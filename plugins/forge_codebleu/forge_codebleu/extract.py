"""Find the code in a model answer or a reference answer.

The answer is the text after the last ``<ANSWER>:`` when there is one (the RAFT format; the
core's :data:`forge_core.validation.ANSWER_MARK` and rule), else the whole text.
When it holds a fenced code block (```` ``` ```` or ``~~~``), the code is the first block
tagged with the sample's language (```` ```python ````), else the first block; a block
left open (an answer cut at ``max_new_tokens``) runs to the end. Common indentation is
removed. Without a fence, the whole answer is the code.

A reference answer without a fence may be prose (RAFT asks questions whose answer is a
sentence): :func:`looks_like_prose` tells them apart by how much of the text tree-sitter
cannot parse.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forge_core.validation import ANSWER_MARK

if TYPE_CHECKING:
    import tree_sitter

__all__ = ["PROSE_ERROR_SHARE", "ExtractedCode", "error_share", "extract_code", "looks_like_prose"]

#: An unfenced reference with more than this share of its bytes in ERROR nodes is prose.
PROSE_ERROR_SHARE = 0.5

FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[^\s`~]*)[^\n]*\n"
    r"(?P<code>.*?)"
    r"(?:^[ \t]*(?P=fence)[`~]*[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class ExtractedCode:
    """The code found in an answer, and whether it came from a fenced block."""

    code: str
    fenced: bool


def extract_code(text: str, fence_tags: frozenset[str] = frozenset()) -> ExtractedCode:
    """The code of an answer (see the module docstring); ``code`` is "" when there is none."""
    _, mark, answer = text.rpartition(ANSWER_MARK)
    # Only the spaces after the mark go: the code's own indentation must stay.
    body = answer.lstrip(" \t") if mark else text
    blocks = [(match["tag"].lower(), match["code"]) for match in FENCE.finditer(body)]
    if blocks:
        tagged = [code for tag, code in blocks if tag in fence_tags]
        code = tagged[0] if tagged else blocks[0][1]
        return ExtractedCode(textwrap.dedent(code).strip("\n").rstrip(), fenced=True)
    return ExtractedCode(textwrap.dedent(body).strip("\n").rstrip(), fenced=False)


def error_share(root: tree_sitter.Node) -> float:
    """The share of the tree's bytes that lie in ERROR or MISSING nodes."""
    size = root.end_byte - root.start_byte
    if size <= 0 or not root.has_error:
        return 0.0
    bad = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            bad += node.end_byte - node.start_byte
        elif node.has_error:
            stack.extend(node.children)
    return bad / size


def looks_like_prose(root: tree_sitter.Node) -> bool:
    """True when more than half of the text does not parse as code (a sentence, a list)."""
    return error_share(root) > PROSE_ERROR_SHARE

"""Find the code in a model answer or a reference answer, and tell code references from prose.

The answer is the final answer by the core's rule (:func:`forge_core.validation.final_answer`,
the one every metric uses: the text after the first line that starts with ``<ANSWER>: ``),
else the whole text. When it holds a fenced code block (```` ``` ```` or ``~~~``), the code
is the first block tagged with the sample's language (```` ```python ````), else the first
block; a block left open (an answer cut at ``max_new_tokens``) runs to the end. Common
indentation is removed. Without a fence, the whole answer is the code.

A reference answer without a fence may be prose: RAFT asks questions whose answer is a
sentence. :func:`reference_holds_code` decides by the sample's question type when it is
known (:data:`CODE_ANSWER_TYPES`, :data:`PROSE_ANSWER_TYPES`), and by how much of the
text tree-sitter cannot parse otherwise: tree-sitter recovers from errors, so a sentence
such as "`f` is defined in `a.py`, lines 1-2." parses with few errors and only its type
tells it from code.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forge_codebleu.languages import parse
from forge_core.validation import final_answer

if TYPE_CHECKING:
    import tree_sitter

__all__ = [
    "CODE_ANSWER_TYPES",
    "PROSE_ANSWER_TYPES",
    "PROSE_ERROR_SHARE",
    "ExtractedCode",
    "answer_text",
    "error_share",
    "extract_code",
    "looks_like_prose",
    "reference_holds_code",
]

#: Question types whose reference answer is code: RAFT's ``implement`` (the unit's source)
#: and the core's ``held_out_code`` samples (a held-out unit's source).
CODE_ANSWER_TYPES = frozenset({"implement", "held_out_code"})
#: RAFT's question types whose reference answer is a sentence (code in it is inline:
#: `name`, a call): never scored unless the reference holds a fenced block.
PROSE_ANSWER_TYPES = frozenset(
    {"purpose", "parameters", "location", "calls", "callers", "usage", "docstring"}
)
#: Of an unfenced reference of unknown type: more than this share of its bytes in ERROR
#: nodes and it is prose (a method outside its class parses with fewer errors).
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


def answer_text(text: str) -> str:
    """The final answer of ``text`` (the core's rule), or all of ``text`` without one.

    The core strips the answer; when it starts on a line of its own (after ``<ANSWER>:``
    and a line break), that line's indentation is put back, so that removing the common
    indentation keeps the code's own.
    """
    answer = final_answer(text)
    if answer is None:
        return text
    answer = answer.strip()
    head = text.rstrip()
    if answer and head.endswith(answer):
        start = len(head) - len(answer)
        indent = text[text.rfind("\n", 0, start) + 1 : start]
        if indent and not indent.strip(" \t"):
            return indent + answer
    return answer


def extract_code(text: str, fence_tags: frozenset[str] = frozenset()) -> ExtractedCode:
    """The code of an answer (see the module docstring); ``code`` is "" when there is none."""
    body = answer_text(text)
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


def reference_holds_code(reference: ExtractedCode, question_type: str, language: str) -> bool:
    """Whether a reference's extracted text is code to score, not prose.

    A fenced block is code whatever the question. Without a fence: never for a
    :data:`PROSE_ANSWER_TYPES` question; for a :data:`CODE_ANSWER_TYPES` question, unless
    none of it parses (a refusal such as "The provided context does not contain `f`."
    when the documents lack the code: tree-sitter finds code in any code, even in a bare
    JavaScript method with an empty body, ``set name(value) {}``); for any other type
    (unknown, a teacher's question), unless it :func:`looks_like_prose`.
    """
    if not reference.code.strip():
        return False
    if reference.fenced:
        return True
    kind = question_type.strip().lower()
    if kind in PROSE_ANSWER_TYPES:
        return False
    root = parse(reference.code, language)[0]
    if kind in CODE_ANSWER_TYPES:
        return error_share(root) < 1.0
    return not looks_like_prose(root)

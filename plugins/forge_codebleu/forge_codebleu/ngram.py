"""The two token components of CodeBLEU: BLEU (through sacrebleu) and the keyword-weighted match.

Code is tokenized with tree-sitter, not with a natural-language tokenizer: every leaf of the
syntax tree is a token (``x.append(y)`` gives ``x . append ( y )``), text a leaf does not
cover (the characters around an escape inside a string) is a token too, comments are
dropped, and whitespace inside a leaf (a string's words) splits it further, so a token
never holds whitespace. The same token list feeds both components.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING

from forge_codebleu.languages import CodeLanguage

if TYPE_CHECKING:
    import tree_sitter
    from sacrebleu.metrics.bleu import BLEU

__all__ = [
    "KEYWORD_WEIGHT",
    "OTHER_WEIGHT",
    "bleu",
    "brevity_penalty",
    "code_tokens",
    "token_weight",
    "weighted_ngram_match",
]

#: Weights of the weighted n-gram match (Ren et al. 2020: keywords weigh 5 times more).
KEYWORD_WEIGHT = 1.0
OTHER_WEIGHT = 0.2


def _split(text: bytes) -> Iterator[str]:
    yield from text.decode("utf-8", errors="replace").split()


def code_tokens(root: tree_sitter.Node, source: bytes, language: CodeLanguage) -> list[str]:
    """The tokens of ``source``: tree-sitter leaves and uncovered text, comments left out."""
    tokens: list[str] = []
    position = 0  # every byte before it is already tokenized (or skipped: a comment)
    # A node to visit, or the end byte of a node whose text after its last child is pending.
    stack: list[tree_sitter.Node | int] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, int):
            tokens.extend(_split(source[position:item]))
            position = max(position, item)
            continue
        tokens.extend(_split(source[position : item.start_byte]))
        position = max(position, item.start_byte)
        if item.type in language.comments or item.child_count == 0:
            if item.type not in language.comments:
                tokens.extend(_split(source[item.start_byte : item.end_byte]))
            position = max(position, item.end_byte)
            continue
        stack.append(item.end_byte)
        stack.extend(reversed(item.children))
    tokens.extend(_split(source[position:]))
    return tokens


@cache
def _sacrebleu() -> BLEU:
    from sacrebleu.metrics.bleu import BLEU

    # The tokens are already split: "none" keeps sacrebleu's tokenizer out of the way;
    # sentence-level BLEU needs smoothing ("exp", sacrebleu's default) and effective order
    # (a 3-token snippet has no 4-grams).
    return BLEU(tokenize="none", smooth_method="exp", effective_order=True)


def bleu(candidate: Sequence[str], reference: Sequence[str]) -> float:
    """Sentence BLEU of the candidate tokens against the reference tokens, in [0, 1]."""
    if not candidate or not reference:
        return 0.0
    score = _sacrebleu().sentence_score(" ".join(candidate), [" ".join(reference)])
    # sacrebleu's 0-100 scale comes back with rounding noise (100.00000000000004 for
    # identical text); BLEU cannot exceed 1.
    return min(1.0, float(score.score) / 100.0)


def token_weight(token: str, language: CodeLanguage) -> float:
    """1.0 for a keyword of the language, 0.2 for any other token."""
    return KEYWORD_WEIGHT if token in language.keywords else OTHER_WEIGHT


def brevity_penalty(candidate_length: int, reference_length: int) -> float:
    """BLEU's brevity penalty: 1 when the candidate is not shorter, exp(1 - r/c) otherwise."""
    if candidate_length == 0:
        return 0.0
    if candidate_length >= reference_length:
        return 1.0
    return math.exp(1.0 - reference_length / candidate_length)


def weighted_ngram_match(
    candidate: Sequence[str], reference: Sequence[str], language: CodeLanguage
) -> float:
    """Keyword-weighted unigram precision times the brevity penalty, in [0, 1].

    ``sum_t w(t) * min(count_cand(t), count_ref(t)) / sum_t w(t) * count_cand(t)``, with
    ``w`` = 1.0 for keywords and 0.2 otherwise (the paper's formula with n = 1), times
    BLEU's brevity penalty on the unweighted lengths.
    """
    if not candidate or not reference:
        return 0.0
    candidate_counts, reference_counts = Counter(candidate), Counter(reference)
    matched = total = 0.0
    # Both sums run over the same tokens in the same order: identical code gives exactly 1.
    for token in sorted(candidate_counts):
        weight = token_weight(token, language)
        count = candidate_counts[token]
        matched += weight * min(count, reference_counts[token])
        total += weight * count
    return matched / total * brevity_penalty(len(candidate), len(reference))

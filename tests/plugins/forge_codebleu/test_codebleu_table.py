"""The hand-computed pairs of ``table.toml`` against the plugin's components, within 1e-6."""

from __future__ import annotations

import ast
import math
import operator
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sacrebleu

from forge_codebleu.dataflow import dataflow_match
from forge_codebleu.languages import code_language, parse
from forge_codebleu.ngram import bleu, code_tokens, weighted_ngram_match
from forge_codebleu.score import code_bleu
from forge_codebleu.syntax import syntax_match

TABLE = Path(__file__).with_name("table.toml")
PAIRS: list[dict[str, Any]] = tomllib.loads(TABLE.read_text("utf-8"))["pair"]
TOLERANCE = 1e-6

_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _arithmetic(node: ast.expr) -> float:
    """Numbers, + - * /, unary minus and exp(): the only syntax the table's sums use."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_arithmetic(node.left), _arithmetic(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arithmetic(node.operand)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "exp"
        and len(node.args) == 1
    ):
        return math.exp(_arithmetic(node.args[0]))
    raise ValueError(f"table.toml: unsupported expression {ast.unparse(node)!r}")


def hand_value(text: str) -> float | None:
    """The value of a hand computation; ``"none"`` means the component has no score."""
    if text == "none":
        return None
    return _arithmetic(ast.parse(text, mode="eval").body)


def _pair_id(pair: dict[str, Any]) -> str:
    return f"{pair['language']}-{pair['name'].replace(' ', '_')}"


def test_table_covers_every_language_with_reasons() -> None:
    counts = Counter(pair["language"] for pair in PAIRS)
    assert min(counts[language] for language in ("python", "javascript", "go")) >= 8, counts
    for pair in PAIRS:
        for field in ("weighted_reasoning", "syntax_reasoning", "dataflow_reasoning"):
            assert pair[field].strip(), f"{_pair_id(pair)}: {field} is empty"


def test_hand_value_reads_only_arithmetic() -> None:
    assert hand_value("(1.0 * 2 + 0.2) / 2.2 * exp(1 - 7 / 7)") == pytest.approx(1.0)
    assert hand_value("none") is None
    with pytest.raises(ValueError, match="unsupported"):
        hand_value("__import__('os')")


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_components_match_the_hand_computation(pair: dict[str, Any]) -> None:
    language = code_language(pair["language"])
    assert language is not None
    candidate = parse(pair["candidate"], language.name)
    reference = parse(pair["reference"], language.name)
    candidate_tokens = code_tokens(*candidate, language)
    reference_tokens = code_tokens(*reference, language)
    assert candidate_tokens == pair["candidate_tokens"]
    assert reference_tokens == pair["reference_tokens"]

    weighted = weighted_ngram_match(candidate_tokens, reference_tokens, language)
    assert weighted == pytest.approx(hand_value(pair["weighted_ngram"]), abs=TOLERANCE)
    syntax = syntax_match(candidate[0], reference[0], language)
    assert syntax == pytest.approx(hand_value(pair["syntax"]), abs=TOLERANCE)
    expected_flow = hand_value(pair["dataflow"])
    flow = dataflow_match(candidate, reference, language)
    if expected_flow is None:
        assert flow is None
    else:
        assert flow == pytest.approx(expected_flow, abs=TOLERANCE)


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_bleu_is_sacrebleu_on_the_code_tokens(pair: dict[str, Any]) -> None:
    hypothesis = " ".join(pair["candidate_tokens"])
    references = [" ".join(pair["reference_tokens"])]
    # sentence_bleu's defaults (exp smoothing, effective order), on the tokens as they are.
    expected = sacrebleu.sentence_bleu(hypothesis, references, tokenize="none").score
    got = bleu(pair["candidate_tokens"], pair["reference_tokens"])
    assert got == pytest.approx(min(1.0, expected / 100.0), abs=TOLERANCE)


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_codebleu_is_the_mean_of_the_scored_components(pair: dict[str, Any]) -> None:
    score = code_bleu(pair["candidate"], pair["reference"], pair["language"])
    assert score is not None
    present = [value for value in score.components().values() if value is not None]
    assert len(present) == (3 if pair["dataflow"] == "none" else 4)
    assert score.codebleu == pytest.approx(sum(present) / len(present), abs=TOLERANCE)

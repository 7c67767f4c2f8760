"""CodeBLEU of one candidate against one reference: the four components and their weighted mean.

``CodeBLEU = a*BLEU + b*weighted_BLEU + c*AST_match + d*dataflow_match`` (Ren et al.
2020), with a = b = c = d = 0.25 by default. A component without a score (the reference
has no data flow) is left out and the remaining weights are renormalised:
``sum(w_i * s_i) / sum(w_i)`` over the components that have a score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from forge_codebleu.dataflow import dataflow_match
from forge_codebleu.languages import code_language, parse
from forge_codebleu.ngram import bleu, code_tokens, weighted_ngram_match
from forge_codebleu.syntax import syntax_match

__all__ = ["COMPONENTS", "DEFAULT_WEIGHTS", "CodeBLEUScore", "code_bleu", "parse_weights"]

#: The components, in the order of the weights (alpha, beta, gamma, delta of the paper).
COMPONENTS: tuple[str, ...] = ("ngram", "weighted_ngram", "syntax", "dataflow")
DEFAULT_WEIGHTS: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)


@dataclass(frozen=True)
class CodeBLEUScore:
    """The four component scores of one pair (None: left out) and the combined score."""

    ngram: float
    weighted_ngram: float
    syntax: float | None
    dataflow: float | None
    codebleu: float

    def components(self) -> dict[str, float | None]:
        """Component name → score."""
        return {name: value for name, value in asdict(self).items() if name != "codebleu"}


def parse_weights(raw: Any) -> tuple[float, float, float, float]:
    """The component weights from ``codebleu_weights``: four numbers, or a name → weight map.

    None gives the defaults (0.25 each). Weights must be finite, not negative, and not all
    zero; they need not sum to 1 (the score divides by their sum).
    """
    if raw is None:
        return DEFAULT_WEIGHTS
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - set(COMPONENTS))
        if unknown:
            raise ValueError(
                f"codebleu_weights: unknown component(s) {', '.join(map(str, unknown))}; "
                f"use {', '.join(COMPONENTS)}"
            )
        values: Sequence[Any] = [raw.get(name, 0.0) for name in COMPONENTS]
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        values = raw
    else:
        raise ValueError(
            f"codebleu_weights must be four numbers or a mapping of {', '.join(COMPONENTS)}; "
            f"got {raw!r}"
        )
    if len(values) != len(COMPONENTS):
        raise ValueError(f"codebleu_weights needs 4 numbers ({', '.join(COMPONENTS)})")
    try:
        weights = tuple(float(value) for value in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"codebleu_weights: {values!r} are not all numbers") from exc
    if any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
        raise ValueError(f"codebleu_weights must be finite, >= 0 and not all 0; got {values!r}")
    return weights[0], weights[1], weights[2], weights[3]


def combine(
    components: Sequence[float | None], weights: Sequence[float] = DEFAULT_WEIGHTS
) -> float:
    """``sum(w_i * s_i) / sum(w_i)`` over the components that have a score."""
    present = [(w, s) for w, s in zip(weights, components, strict=True) if s is not None]
    total = math.fsum(w for w, _ in present)
    if total == 0:
        return 0.0
    # For all-ones scores numerator and denominator are the same sum: exactly 1.0.
    return math.fsum(w * s for w, s in present) / total


def code_bleu(
    candidate: str,
    reference: str,
    language: str,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
) -> CodeBLEUScore | None:
    """CodeBLEU of ``candidate`` against ``reference`` (source code, not model answers).

    None when the language is not supported or the reference holds no code. An empty
    candidate against a real reference scores 0 on every component.
    """
    spec = code_language(language)
    if spec is None or not reference.strip():
        return None
    ref_root, ref_source = parse(reference, spec.name)
    cand_root, cand_source = parse(candidate, spec.name)
    ref_tokens = code_tokens(ref_root, ref_source, spec)
    if not ref_tokens:  # only comments
        return None
    cand_tokens = code_tokens(cand_root, cand_source, spec)
    ngram = bleu(cand_tokens, ref_tokens)
    weighted = weighted_ngram_match(cand_tokens, ref_tokens, spec)
    syntax = syntax_match(cand_root, ref_root, spec)
    dataflow = dataflow_match((cand_root, cand_source), (ref_root, ref_source), spec)
    total = combine((ngram, weighted, syntax, dataflow), weights)
    return CodeBLEUScore(ngram, weighted, syntax, dataflow, total)

"""The ``codebleu`` metric over an :class:`~forge_core.contracts.EvaluateRequest`.

Each sample is scored on its own (sentence-level CodeBLEU); the metric's value is the mean
over the samples that have a score. A sample has none (None) when its language is not
Python, JavaScript or Go, when its reference holds no code, or when the reference is only
comments. A reference holds code when it has a fenced block, or when its question type's
answers are code (``implement``, ``held_out_code``) and it is not a refusal; the answer
to any other RAFT question (``location``, ``usage``, ...) is prose, and a reference of
unknown type is prose when most of it does not parse (see
:func:`forge_codebleu.extract.reference_holds_code`). A sample whose answer holds no code
while its reference does scores 0.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean
from typing import Any

from forge_codebleu.extract import extract_code, reference_holds_code
from forge_codebleu.languages import code_language
from forge_codebleu.score import COMPONENTS, CodeBLEUScore, code_bleu, parse_weights
from forge_core.contracts import EvalSample, EvaluateRequest, EvaluateResult

__all__ = ["METRIC", "WEIGHTS_SETTING", "evaluate_codebleu", "score_sample"]

METRIC = "codebleu"
#: The key of ``request.settings`` that overrides the component weights.
WEIGHTS_SETTING = "codebleu_weights"


def score_sample(
    sample: EvalSample, weights: tuple[float, float, float, float]
) -> tuple[CodeBLEUScore | None, str]:
    """The sample's score (None when it has none) and why: ``scored`` or the skip reason."""
    language = code_language(sample.language) if sample.language else None
    if language is None:
        return None, "unsupported_language"
    reference = extract_code(sample.reference, language.fence_tags)
    if not reference_holds_code(reference, sample.question_type, language.name):
        return None, "no_reference_code"
    prediction = extract_code(sample.prediction, language.fence_tags)
    score = code_bleu(prediction.code, reference.code, language.name, weights)
    return score, "scored" if score is not None else "no_reference_code"


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def evaluate_codebleu(request: EvaluateRequest) -> EvaluateResult:
    """CodeBLEU of every sample, their mean, and the means by language and by component."""
    weights = parse_weights(request.settings.get(WEIGHTS_SETTING))
    per_sample: list[float | None] = []
    by_language: dict[str, list[float]] = defaultdict(list)
    components: dict[str, list[float]] = {name: [] for name in COMPONENTS}
    outcomes: dict[str, int] = defaultdict(int)
    for sample in request.samples:
        score, outcome = score_sample(sample, weights)
        outcomes[outcome] += 1
        if score is None:
            per_sample.append(None)
            continue
        per_sample.append(score.codebleu)
        by_language[sample.language.strip().lower()].append(score.codebleu)
        for name, value in score.components().items():
            if value is not None:
                components[name].append(value)
    scored = [value for value in per_sample if value is not None]
    details: dict[str, Any] = {
        "by_language": {
            language: {"value": fmean(values), "samples": len(values)}
            for language, values in sorted(by_language.items())
        },
        "components": {name: _mean(values) for name, values in components.items()},
        "weights": dict(zip(COMPONENTS, weights, strict=True)),
        "samples": {"scored": len(scored), **{k: v for k, v in outcomes.items() if k != "scored"}},
        "level": "sentence (per sample), averaged",
    }
    return EvaluateResult(
        metric=METRIC,
        value=_mean(scored),
        higher_is_better=True,
        per_sample=per_sample,
        details=details,
    )

"""Perplexity never improves on a NaN log-prob: the value is missing and the gate says why."""

from __future__ import annotations

import json
import math

import pytest

from forge_core.builtin.metrics import MAX_MEAN_NLL, perplexity
from forge_core.config import GateSettings
from forge_core.contracts import EvalSample, EvaluateRequest, EvaluateResult
from forge_core.evaluation import apply_gate

NAN, INF = math.nan, math.inf


def ppl(*logprobs: list[float], first_language: str = "python") -> EvaluateResult:
    """Perplexity over one sample per log-prob list (the first in ``first_language``)."""
    samples = [
        EvalSample(
            id=f"s{i}",
            reference="r",
            language=first_language if i == 0 else "python",
            token_logprobs=lps,
        )
        for i, lps in enumerate(logprobs)
    ]
    return perplexity(EvaluateRequest(metric="perplexity", samples=samples))


def test_a_nan_log_prob_leaves_perplexity_undefined_not_better() -> None:
    assert ppl([-1.0] * 10).value == pytest.approx(math.e)
    for diverged in (ppl([NAN] * 10), ppl([-1.0] * 5 + [NAN] * 5), ppl([-1.0], [INF, -1.0])):
        assert diverged.value is None
    half = ppl([-1.0] * 5 + [NAN] * 5, [-2.0] * 2)
    assert half.value is None
    assert half.per_sample == [None, pytest.approx(math.exp(2))]
    assert half.details["invalid_logprobs"] == 5 and half.details["invalid_samples"] == 1
    assert half.details["reason"] == (
        "5 of 12 reference-token log-probs (in 1 of 2 samples) are NaN or +inf: the "
        "model's scores are not numbers (diverged training or a broken backend)"
    )
    assert half.details["by_language"] == {"python": None}
    clean = ppl([-1.0] * 3)
    assert clean.details["invalid_logprobs"] == 0 and "reason" not in clean.details


def test_a_nan_sample_spoils_only_its_own_breakdowns() -> None:
    mixed = ppl([NAN, -1.0], [-1.0], first_language="go")
    assert mixed.details["by_language"] == {"go": None, "python": pytest.approx(math.e)}


def test_a_zero_probability_token_makes_perplexity_huge_but_finite() -> None:
    result = ppl([-INF, -1.0])
    assert result.value == pytest.approx(math.exp(MAX_MEAN_NLL))
    assert result.details["invalid_logprobs"] == 0


def test_the_gate_fails_a_diverged_model_and_the_document_is_strict_json() -> None:
    base = ppl([-1.0] * 10)
    diverged = ppl([NAN] * 10)
    verdict = apply_gate(GateSettings(), {"perplexity": base}, {"perplexity": diverged})
    assert not verdict.passed
    assert verdict.reasons == [
        "perplexity: no value for the fine-tuned model (the reference had 2.718): 10 of 10 "
        "reference-token log-probs (in 1 of 1 samples) are NaN or +inf: the model's scores "
        "are not numbers (diverged training or a broken backend)"
    ]
    document = {
        "metrics": {"fine_tuned": {"perplexity": diverged.value}},
        "gate": verdict.as_json(),
        "details": {"fine_tuned": {"perplexity": diverged.model_dump(mode="json")}},
    }
    json.dumps(document, allow_nan=False)  # raises on NaN or infinity

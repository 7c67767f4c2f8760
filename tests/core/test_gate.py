"""The eval gate: it fails when it judged nothing or the fine-tuned model lost a metric."""

from __future__ import annotations

import json
from pathlib import Path

from forge_core.config import ForgeSettings, GateSettings
from forge_core.contracts import EvaluateResult
from forge_core.evaluation import apply_gate
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry


def results(**values: float | None) -> dict[str, EvaluateResult]:
    return {
        name: EvaluateResult(metric=name, value=value, higher_is_better=name != "perplexity")
        for name, value in values.items()
    }


def test_a_gate_that_compared_nothing_fails_and_says_why() -> None:
    empty = apply_gate(GateSettings(), results(toy=None), results(toy=None), questions=0)
    assert not empty.passed
    assert empty.reasons == [
        "no metric could be compared: the test split has no questions (see validate/report.json)"
    ]
    unmeasured = apply_gate(GateSettings(), results(toy=None), results(toy=None), questions=5)
    assert not unmeasured.passed
    assert unmeasured.reasons == [
        "no metric could be compared: no metric has a value for both the reference "
        "and the fine-tuned model"
    ]
    assert not apply_gate(GateSettings(), {}, {}).passed


def test_a_metric_the_fine_tuned_model_lost_fails_the_gate() -> None:
    reference = results(perplexity=2.718, exact_match=0.5)
    lost = apply_gate(GateSettings(), reference, results(perplexity=None, exact_match=0.5))
    assert not lost.passed
    assert lost.reasons == [
        "perplexity: no value for the fine-tuned model (the reference had 2.718)"
    ]
    missing = apply_gate(GateSettings(), reference, results(exact_match=0.5))
    assert missing.reasons == [
        "perplexity: no value for the fine-tuned model (the reference had 2.718)"
    ]
    with_reason = results(perplexity=None, exact_match=0.5)
    with_reason["perplexity"].details["reason"] = "3 of 3 log-probs are NaN"
    quoted = apply_gate(GateSettings(), reference, with_reason)
    assert quoted.reasons == [
        "perplexity: no value for the fine-tuned model (the reference had 2.718): "
        "3 of 3 log-probs are NaN"
    ]
    # The reference lacking a value is not the candidate's fault: the rest is compared.
    assert apply_gate(
        GateSettings(),
        results(perplexity=None, exact_match=0.5),
        results(perplexity=3.0, exact_match=0.5),
    ).passed


def test_an_empty_test_split_fails_the_gate_in_a_run(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, tmp_path: Path
) -> None:
    repo = tmp_path / "one_file"
    repo.mkdir()
    (repo / "only.toy").write_text("".join(f"def f{n}\nbody\n" for n in range(4)))
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    forge.mine(repo)
    forge.synth()
    forge.validate()
    report = json.loads((forge.run.path / "validate" / "report.json").read_text())
    assert report["splits"]["test"] == 0
    assert report["warnings"][0].startswith("the test split is empty: every kept example")
    forge.train()
    forge.evaluate()
    document = json.loads((forge.run.path / "eval" / "metrics.json").read_text())
    assert document["gate"]["passed"] is False
    assert document["gate"]["reasons"] == [
        "no metric could be compared: the test split has no questions (see validate/report.json)"
    ]

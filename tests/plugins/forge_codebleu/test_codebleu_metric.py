"""The ``codebleu`` metric over requests: code extraction, samples, details and the registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forge_codebleu import plugin
from forge_codebleu.extract import extract_code, looks_like_prose
from forge_codebleu.languages import parse
from forge_codebleu.metric import evaluate_codebleu
from forge_codebleu.score import code_bleu
from forge_core.contracts import EvalSample, EvaluateRequest, EvaluateResult
from forge_core.plugins import PluginRegistry

PY_REFERENCE = "def area(w, h):\n    a = w * h\n    return a\n"
PY_ANSWER = "def area(w, h):\n    return w * h\n"
JS_CODE = "function inc(n) { return n + 1; }"
GO_CODE = "func inc(n int) int {\n\treturn n + 1\n}"


def sample(
    reference: str, prediction: str, language: str = "python", ident: str = "s"
) -> EvalSample:
    return EvalSample(id=ident, language=language, reference=reference, prediction=prediction)


# --------------------------------------------------------------------------- extraction


def test_code_after_the_answer_mark_and_in_a_fence() -> None:
    answer = (
        "It multiplies ##begin_quote##w * h##end_quote##.\n"
        "<ANSWER>: Here it is:\n```python\ndef f():\n    return 1\n```\nDone."
    )
    found = extract_code(answer, frozenset({"python", "py"}))
    assert found.code == "def f():\n    return 1"
    assert found.fenced


def test_the_block_tagged_with_the_language_wins() -> None:
    answer = "```bash\npip install x\n```\nthen\n```go\nx := 1\n```\n"
    assert extract_code(answer, frozenset({"go"})).code == "x := 1"
    assert extract_code(answer, frozenset({"python"})).code == "pip install x"


def test_an_open_fence_runs_to_the_end_and_indentation_is_kept() -> None:
    cut = "<ANSWER>: ```js\nfunction f() {\n  return 1;"
    assert extract_code(cut).code == "function f() {\n  return 1;"
    nested = "Reasoning.\n<ANSWER>:\n    if x:\n        y = 1\n"
    assert extract_code(nested).code == "if x:\n    y = 1"
    inline = "<ANSWER>: def f():\n    return 1"
    assert extract_code(inline) == extract_code("def f():\n    return 1")
    assert not extract_code(inline).fenced


def test_prose_is_told_from_code() -> None:
    prose = "`area` is called by `main` in `src/app.py` and by `report`."
    for language in ("python", "javascript", "go"):
        assert looks_like_prose(parse(prose, language)[0])
    assert not looks_like_prose(parse(PY_REFERENCE, "python")[0])
    method = "add(item) {\n    this.items.push(item);\n    return this;\n  }"
    assert not looks_like_prose(parse(method, "javascript")[0])


# --------------------------------------------------------------------------- the metric


def test_samples_of_every_kind() -> None:
    samples = [
        sample(f"Reasoning.\n<ANSWER>: {PY_REFERENCE}", f"<ANSWER>: {PY_ANSWER}", ident="py"),
        sample(JS_CODE, f"```javascript\n{JS_CODE}\n```", "javascript", "js"),
        sample(GO_CODE, "<ANSWER>: I do not know.", "go", "go"),
        sample("fn main() {}", "fn main() {}", "rust", "rust"),
        sample("<ANSWER>: ", PY_ANSWER, ident="empty-reference"),
        sample("<ANSWER>: `area` is called by `main`.", PY_ANSWER, ident="prose"),
        sample("```python\n# nothing but a comment\n```", PY_ANSWER, ident="comment"),
        sample(PY_REFERENCE, "", ident="no-answer"),
    ]
    result = evaluate_codebleu(EvaluateRequest(metric="codebleu", samples=samples))
    assert result.metric == "codebleu" and result.higher_is_better
    python = code_bleu(PY_ANSWER, PY_REFERENCE, "python")
    go = code_bleu("I do not know.", GO_CODE, "go")
    assert python is not None and go is not None
    assert result.per_sample == [python.codebleu, 1.0, go.codebleu, None, None, None, None, 0.0]
    scored = [python.codebleu, 1.0, go.codebleu, 0.0]
    assert result.value == pytest.approx(sum(scored) / 4)
    by_language = result.details["by_language"]
    assert by_language["javascript"] == {"value": 1.0, "samples": 1}
    assert by_language["python"]["samples"] == 2
    assert by_language["python"]["value"] == pytest.approx(python.codebleu / 2)
    assert set(result.details["components"]) == {"ngram", "weighted_ngram", "syntax", "dataflow"}
    assert result.details["samples"] == {
        "scored": 4,
        "unsupported_language": 1,
        "no_reference_code": 3,
    }
    assert EvaluateResult.model_validate_json(result.model_dump_json()) == result


def test_no_scored_sample_gives_no_value() -> None:
    request = EvaluateRequest(metric="codebleu", samples=[sample("", "x = 1")])
    result = evaluate_codebleu(request)
    assert result.value is None
    assert result.per_sample == [None]
    assert result.details["components"]["syntax"] is None
    empty = evaluate_codebleu(EvaluateRequest(metric="codebleu", samples=[]))
    assert empty.value is None and empty.per_sample == []


def test_weights_come_from_the_settings() -> None:
    samples = [sample(PY_REFERENCE, PY_ANSWER)]
    only_ngram = EvaluateRequest(
        metric="codebleu", samples=samples, settings={"codebleu_weights": [1, 0, 0, 0]}
    )
    result = evaluate_codebleu(only_ngram)
    assert result.value == pytest.approx(result.details["components"]["ngram"])
    assert result.details["weights"] == {
        "ngram": 1.0,
        "weighted_ngram": 0.0,
        "syntax": 0.0,
        "dataflow": 0.0,
    }
    by_name = EvaluateRequest(
        metric="codebleu", samples=samples, settings={"codebleu_weights": {"dataflow": 2.0}}
    )
    assert evaluate_codebleu(by_name).value == pytest.approx(2 / 5)
    bad = EvaluateRequest(metric="codebleu", samples=samples, settings={"codebleu_weights": [1]})
    with pytest.raises(ValueError, match="codebleu_weights"):
        evaluate_codebleu(bad)


# --------------------------------------------------------------------------- the plugin


def test_the_plugin_declares_codebleu() -> None:
    assert plugin.provided_names() == {"evaluate": ["codebleu"]}


def test_through_the_plugin_registry() -> None:
    registry = PluginRegistry()
    assert registry.find("evaluate", "codebleu") == "codebleu"
    assert registry.info("codebleu").distribution == "forge-codebleu"
    request = EvaluateRequest(
        metric="codebleu",
        samples=[sample(PY_REFERENCE, PY_REFERENCE), sample(GO_CODE, GO_CODE, "go")],
    )
    result = EvaluateResult.model_validate(registry.call("evaluate", "codebleu", request))
    assert result.value == 1.0
    assert result.per_sample == [1.0, 1.0]


def test_importing_the_plugin_stays_light() -> None:
    code = (
        "import sys, forge_codebleu.plugin\n"
        "heavy = {'tree_sitter', 'sacrebleu', 'forge_codebleu.score'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.strip() == "[]"

"""The ``codebleu`` metric over requests: code extraction, samples, details and the registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forge_codebleu import plugin
from forge_codebleu.extract import extract_code, looks_like_prose
from forge_codebleu.languages import parse
from forge_codebleu.metric import evaluate_codebleu, score_sample
from forge_codebleu.score import DEFAULT_WEIGHTS, code_bleu
from forge_core.contracts import EvalSample, EvaluateRequest, EvaluateResult
from forge_core.plugins import PluginRegistry
from forge_core.validation import final_answer

PY_REFERENCE = "def area(w, h):\n    a = w * h\n    return a\n"
PY_ANSWER = "def area(w, h):\n    return w * h\n"
JS_CODE = "function inc(n) { return n + 1; }"
GO_CODE = "func inc(n int) int {\n\treturn n + 1\n}"
WEIGHTS = DEFAULT_WEIGHTS


def sample(
    reference: str,
    prediction: str,
    language: str = "python",
    ident: str = "s",
    question_type: str = "",
) -> EvalSample:
    return EvalSample(
        id=ident,
        language=language,
        reference=reference,
        prediction=prediction,
        question_type=question_type,
    )


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
    next_line = "Reasoning.\n<ANSWER>: \n    def m(self):\n        return 1\n"
    assert extract_code(next_line).code == "def m(self):\n    return 1"


def test_the_final_answer_follows_the_first_answer_line() -> None:
    # The answer's code holds "<ANSWER>:" itself: the core's rule (the first line that
    # starts with "<ANSWER>: ") keeps all of it; the last mark would keep its tail only.
    code = (
        "def check(text):\n"
        '    if "<ANSWER>:" not in text:\n'
        '        return "no final answer line"\n'
        "    return None"
    )
    reference = f"It is ##begin_quote##def check(text):##end_quote##.\n<ANSWER>: {code}"
    assert final_answer(reference) == code
    assert extract_code(reference).code == code
    wrong = reference.replace("def check(text):\n    if", "def other():\n    x =")
    score, outcome = score_sample(sample(reference, wrong, question_type="implement"), WEIGHTS)
    assert outcome == "scored" and score is not None
    assert score.dataflow == 0.0
    assert score.codebleu == pytest.approx(0.5512882, abs=1e-6)


def test_prose_is_told_from_code() -> None:
    prose = "`area` is called by `main` in `src/app.py` and by `report`."
    for language in ("python", "javascript", "go"):
        assert looks_like_prose(parse(prose, language)[0])
    assert not looks_like_prose(parse(PY_REFERENCE, "python")[0])
    method = "add(item) {\n    this.items.push(item);\n    return this;\n  }"
    assert not looks_like_prose(parse(method, "javascript")[0])


# --------------------------------------------------------------------------- code or prose

LOCATION = (
    "The document declares it.\n"
    "<ANSWER>: `legacy_total` is defined in `python/inventory/legacy.py`, lines 10-12."
)
REFUSAL = (
    "None of the documents defines `area`.\n"
    "<ANSWER>: The provided context does not contain `area` from `geo.py`."
)


@pytest.mark.parametrize(
    "question_type",
    ["purpose", "parameters", "location", "calls", "callers", "usage", "docstring"],
)
def test_answers_to_prose_questions_have_no_score(question_type: str) -> None:
    # The sentence parses with few tree-sitter errors: only the question type tells.
    wrong = LOCATION.replace("legacy.py`, lines 10-12", "stock.py`, lines 40-52")
    for prediction in (LOCATION, wrong):
        unscored = score_sample(sample(LOCATION, prediction, question_type=question_type), WEIGHTS)
        assert unscored == (None, "no_reference_code")


def test_a_fenced_block_is_code_in_any_answer() -> None:
    usage = "<ANSWER>: As `main` does:\n```python\ntotal = area(2, 3)\n```"
    score, outcome = score_sample(sample(usage, usage, question_type="usage"), WEIGHTS)
    assert outcome == "scored" and score is not None and score.codebleu == 1.0


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("javascript", "set someLongPropertyName(value) {}"),  # 0.91 of it is ERROR
        ("javascript", "addItem(item) {\n  this.items.push(item);\n  return this;\n}"),
        ("python", "    def total(self):\n        return sum(self.items)\n"),
        ("go", GO_CODE),
    ],
)
def test_answers_to_code_questions_are_code(language: str, code: str) -> None:
    for question_type in ("implement", "held_out_code"):
        reference = f"It is ##begin_quote##x##end_quote##.\n<ANSWER>: {code}"
        answer = sample(reference, code, language, question_type=question_type)
        score, outcome = score_sample(answer, WEIGHTS)
        assert outcome == "scored" and score is not None and score.codebleu == 1.0


def test_a_refusal_to_a_code_question_has_no_score() -> None:
    for language in ("python", "javascript", "go"):
        refused = sample(REFUSAL, REFUSAL, language, question_type="implement")
        assert score_sample(refused, WEIGHTS) == (None, "no_reference_code")


def test_without_a_question_type_the_share_of_errors_decides() -> None:
    bare = "addItem(item) {\n  this.items.push(item);\n  return this;\n}"
    score, outcome = score_sample(sample(bare, bare, "javascript"), WEIGHTS)
    assert outcome == "scored" and score is not None and score.codebleu == 1.0
    assert score_sample(sample(REFUSAL, REFUSAL), WEIGHTS) == (None, "no_reference_code")


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

"""The evaluation report: self-contained HTML and the terminal table."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from forge_core.config import GateSettings
from forge_core.contracts import ChatMessage, EvalSample, EvaluateRequest, EvaluateResult
from forge_core.evaluation import apply_gate
from forge_core.plugins import PluginRegistry
from forge_core.report import compare, metric_rows, print_metrics_table, write_report

# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
CONTEXT = "def load(path):\n    return read_config(path)\n\nQuestion: What does load call?"
METRICS = ("exact_match", "perplexity", "hallucination", "quote_fidelity")


def samples_for(answers: list[str], logprob: float) -> list[EvalSample]:
    kinds = [("calls", "python"), ("calls", "go"), ("purpose", "python"), ("purpose", "go")]
    return [
        EvalSample(
            id=f"q{i}",
            question_type=kind,
            language=language,
            prompt=[ChatMessage(role="user", content=CONTEXT)],
            context=CONTEXT,
            reference="It calls ##begin_quote##read_config(path)##end_quote##\n"
            "<ANSWER>: read_config",
            prediction=answer,
            token_logprobs=[logprob, logprob],
        )
        for i, (answer, (kind, language)) in enumerate(zip(answers, kinds, strict=True))
    ]


@pytest.fixture(scope="module")
def evaluated() -> tuple[dict[str, Any], dict[str, list[EvalSample]]]:
    """Base and fine-tuned samples scored by the builtin metrics, shaped like metrics.json."""
    samples = {
        "base": samples_for(
            [
                "<ANSWER>: read_config",
                "<ANSWER>: <script>alert('pwned')</script>",
                "It calls fetch_remote_settings().\n<ANSWER>: fetch_remote_settings",
                "<ANSWER>: nothing",
            ],
            logprob=-1.0,
        ),
        "fine_tuned": samples_for(
            [
                "<ANSWER>: read_config",
                "##begin_quote##return read_config(path)##end_quote##\n<ANSWER>: read_config",
                "<ANSWER>: read_config",
                "##begin_quote##return parse_everything(path)##end_quote##\n<ANSWER>: nothing",
            ],
            logprob=-2.0,
        ),
    }
    registry = PluginRegistry(entry_points=False)
    results: dict[str, dict[str, EvaluateResult]] = {}
    for label, items in samples.items():
        results[label] = {
            metric: EvaluateResult.model_validate(
                registry.call(
                    "evaluate",
                    metric,
                    EvaluateRequest(metric=metric, samples=items, symbols=["load"]),
                )
            )
            for metric in METRICS
        }
    verdict = apply_gate(GateSettings(), results["base"], results["fine_tuned"])
    document = {
        "metrics": {label: {n: r.value for n, r in m.items()} for label, m in results.items()},
        "gate": verdict.as_json(),
        "details": {
            label: {n: r.model_dump(mode="json") for n, r in m.items()}
            for label, m in results.items()
        },
    }
    return document, samples


@pytest.fixture(scope="module")
def report_html(
    evaluated: tuple[dict[str, Any], dict[str, list[EvalSample]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    document, samples = evaluated
    run_dir = tmp_path_factory.mktemp("run")
    loss = run_dir / "loss.png"
    loss.write_bytes(PNG)
    path = write_report(run_dir, document, samples, loss)
    assert path == run_dir / "eval" / "report.html" and path.is_file()
    return path.read_text(encoding="utf-8")


def test_the_known_values_behind_the_report(
    evaluated: tuple[dict[str, Any], dict[str, list[EvalSample]]],
) -> None:
    document, _ = evaluated
    assert document["metrics"]["base"]["exact_match"] == 0.25
    assert document["metrics"]["fine_tuned"]["exact_match"] == 0.75
    # base: fetch_remote_settings and (in Go) alert; fine-tuned: parse_everything
    assert document["metrics"]["base"]["hallucination"] == 0.5
    assert document["metrics"]["fine_tuned"]["hallucination"] == 0.25
    assert document["metrics"]["fine_tuned"]["quote_fidelity"] == 0.5
    assert document["gate"]["passed"] is False  # perplexity got worse: e^1 → e^2


def test_report_has_metrics_deltas_and_gate(
    report_html: str, evaluated: tuple[dict[str, Any], dict[str, list[EvalSample]]]
) -> None:
    document, _ = evaluated
    for metric in METRICS:
        assert metric in report_html
    assert "+0.5 (+200.0%)" in report_html  # exact_match 0.25 → 0.75
    assert '<td class="num better">+0.5 (+200.0%)</td>' in report_html
    assert '<td class="num worse">+4.671 (+171.8%)</td>' in report_html  # perplexity e → e²
    assert '<td class="num better">-0.25 (-50.0%)</td>' in report_html  # hallucination
    assert "Quality gate failed" in report_html
    for reason in document["gate"]["reasons"]:
        assert reason in report_html
    assert "perplexity regressed" in report_html


def test_report_is_self_contained_and_escaped(report_html: str) -> None:
    assert 'src="data:image/png;base64,' + base64.b64encode(PNG).decode() in report_html
    assert 'src="http' not in report_html and 'href="http' not in report_html
    assert "<link" not in report_html and "<script" not in report_html
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in report_html


def test_report_breakdowns_and_samples(report_html: str) -> None:
    assert "By question type" in report_html and "By language" in report_html
    assert "<td>calls</td>" in report_html and "<td>purpose</td>" in report_html
    assert "<td>go</td>" in report_html and "<td>python</td>" in report_html
    assert "phantom APIs: fetch_remote_settings" in report_html
    assert "quote not in the context: return parse_everything(path)" in report_html
    assert "What does load call?" in report_html
    assert "4 of 4 questions" in report_html


def test_report_without_a_loss_curve(
    evaluated: tuple[dict[str, Any], dict[str, list[EvalSample]]], tmp_path: Path
) -> None:
    document, samples = evaluated
    html = write_report(tmp_path, document, samples, tmp_path / "missing.png").read_text()
    assert "No loss curve" in html and "data:image/png" not in html


def test_comparison_respects_the_direction() -> None:
    assert compare("perplexity", 5.0, 4.0, False).verdict == "better"
    assert compare("exact_match", 0.5, 0.4, True).verdict == "worse"
    assert compare("exact_match", 0.5, None, True).verdict == "none"
    assert compare("exact_match", 0.5, 0.5, True).verdict == "same"
    assert compare("exact_match", 0.5, 0.5, True).delta_text == "+0 (+0.0%)"
    assert compare("exact_match", 0, 0.5, True).delta_text == "+0.5"


def test_terminal_table(evaluated: tuple[dict[str, Any], dict[str, list[EvalSample]]]) -> None:
    document, _ = evaluated
    console = Console(record=True, width=120, color_system=None)
    print_metrics_table(document, console)
    text = console.export_text()
    for row in metric_rows(document):
        assert row.name in text
    assert "0.25" in text and "+0.5 (+200.0%)" in text
    assert "gate failed" in text and "perplexity regressed" in text


def test_report_of_a_plugin_metric_without_details(tmp_path: Path) -> None:
    document = {
        "metrics": {"base": {"toy_metric": 0.0}, "fine_tuned": {"toy_metric": 1.0}},
        "gate": {"passed": True, "reasons": ["no metric regressed beyond the tolerance"]},
        "details": {
            "base": {"toy_metric": {"metric": "toy_metric", "value": 0.0, "per_sample": [0.0]}},
            "fine_tuned": {"toy_metric": {"metric": "toy_metric", "value": 1.0}},
        },
    }
    samples = {"base": [EvalSample(id="q0", reference="r", prediction="a & b")], "fine_tuned": []}
    html = write_report(tmp_path, document, samples, None).read_text()
    assert "Quality gate passed" in html and "+1</td>" in html
    assert "By question type" not in html and "a &amp; b" in html


def test_the_question_shown_is_the_samples_own_when_known() -> None:
    from forge_core.report import question_of

    sample = samples_for(["<ANSWER>: x"] * 4, -1.0)[0]
    assert question_of(sample) == "What does load call?"  # cut from the user turn
    # A synthesizer that states its question needs no "Question:" marker in the prompt.
    sample.prompt = [ChatMessage(role="user", content="<DOCUMENT>…</DOCUMENT>\nWhich file?")]
    sample.question = "Which file holds load?"
    assert question_of(sample) == "Which file holds load?"


def test_evaluation_samples_carry_the_examples_question() -> None:
    from forge_core.contracts import Example
    from forge_core.evaluation import samples_from_examples

    example = Example(
        id="e",
        messages=[
            ChatMessage(role="user", content="docs\nWhere is load?"),
            ChatMessage(role="assistant", content="<ANSWER>: a.py"),
        ],
        question_type="location",
        language="python",
        path="a.py",
        oracle_id="u",
        question="Where is load?",
    )
    (sample,) = samples_from_examples([example])
    assert sample.question == "Where is load?"
    assert sample.reference == "<ANSWER>: a.py"

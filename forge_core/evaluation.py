"""The ``eval`` stage's work: run the same prompts through the models, score, gate."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.config import EvalSettings, GateSettings
from forge_core.contracts import (
    ChatMessage,
    CodeUnit,
    EvalSample,
    EvaluateRequest,
    EvaluateResult,
    Example,
    TrainResult,
)
from forge_core.deployed import GateReference
from forge_core.eval_gguf import EvalModel, GgufExport, export_for_evaluation
from forge_core.files import read_jsonl, write_text_atomic
from forge_core.plugins import PluginRegistry
from forge_core.progress import Progress


@dataclass
class GateVerdict:
    """Whether the fine-tuned model may be deployed, and why."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    reference: str = "the base model"
    """The model the fine-tuned one was compared with, in words."""
    reference_trained_on: int = 0
    """Test questions about files the reference model was trained on."""

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "reference": self.reference,
            "reference_trained_on": self.reference_trained_on,
        }


def samples_from_examples(examples: list[Example]) -> list[EvalSample]:
    """Turn test examples into samples (prompt = every turn but the answer)."""
    samples = []
    for example in examples:
        prompt = example.messages[:-1]
        context = "\n".join(m.content for m in prompt if m.role == "user")
        samples.append(
            EvalSample(
                id=example.id,
                question_type=example.question_type,
                language=example.language,
                prompt=prompt,
                context=context,
                question=example.question,
                reference=example.messages[-1].content,
            )
        )
    return samples


def code_samples(units: list[CodeUnit]) -> list[EvalSample]:
    """Held-out code as samples: the unit's source is the "answer" whose tokens are scored."""
    return [
        EvalSample(
            id=unit.id,
            question_type="held_out_code",
            language=unit.language,
            prompt=[
                ChatMessage(role="user", content=f"Show {unit.qualified_name} from {unit.path}.")
            ],
            reference=unit.source,
        )
        for unit in units
    ]


#: Prompts handed to a backend's ``generate`` at once (and the progress bar's step).
GENERATION_BATCH = 8


def prompt_length(sample: EvalSample) -> int:
    """The length of a sample's prompt in characters (a tokenizer-free proxy for tokens)."""
    return sum(len(message.content) for message in sample.prompt)


def generation_order(samples: list[EvalSample]) -> list[int]:
    """Sample indices, longest prompt first, so that each batch holds similar lengths.

    A batch is padded to its longest prompt and its new tokens must fit the model's
    context after that prompt: a long prompt batched with short ones would waste the
    padding and cut the short prompts' answers. Longest first also meets an
    out-of-memory error, if any, at the start. The sort is stable: ties keep their order.
    """
    return sorted(range(len(samples)), key=lambda index: -prompt_length(samples[index]))


def run_model(
    registry: PluginRegistry,
    settings: EvalSettings,
    model: str,
    adapter: str | None,
    examples: list[Example],
    on_batch: Callable[[int], None] = lambda n: None,
    held_out_code: list[EvalSample] | None = None,
) -> list[EvalSample]:
    """Generate answers and score reference log-probs with one model.

    ``held_out_code`` samples are only scored (their ``token_logprobs`` are
    filled in place), with the same loaded model.
    """
    backend = registry.model_backend(settings.backend).load(model, adapter, {})
    try:
        for code in held_out_code or []:
            conversation = [*code.prompt, ChatMessage(role="assistant", content=code.reference)]
            code.token_logprobs = backend.score([conversation])[0]
        samples = samples_from_examples(examples)
        order = generation_order(samples)
        for start in range(0, len(order), GENERATION_BATCH):
            chunk = order[start : start + GENERATION_BATCH]
            answers = backend.generate(
                [samples[i].prompt for i in chunk], max_new_tokens=settings.max_new_tokens
            )
            scores = backend.score([examples[i].messages for i in chunk])
            for index, answer, logprobs in zip(chunk, answers, scores, strict=True):
                samples[index].prediction = answer
                samples[index].token_logprobs = logprobs
            on_batch(len(chunk))
        return samples
    finally:
        backend.close()


def generation_budget(samples: list[EvalSample], max_new_tokens: int) -> dict[str, int]:
    """How the answer budget compares with the reference answers' lengths.

    A reference's length is the number of tokens its answer was scored on, less the
    end-of-turn token generation stops at (a template may score one more, such as a
    newline after it: the figure is then one token high). A model that answers as
    the reference does needs about that many new tokens; with fewer, its answer is
    cut before the final ``<ANSWER>:`` line and exact match cannot count it.
    """
    lengths = [len(s.token_logprobs) - 1 for s in samples if s.token_logprobs]
    return {
        "max_new_tokens": max_new_tokens,
        "questions": len(samples),
        "longest_reference_tokens": max(lengths, default=0),
        "references_over_budget": sum(length > max_new_tokens for length in lengths),
    }


def budget_warning(budget: dict[str, int]) -> str | None:
    """What to tell the user when reference answers do not fit the answer budget."""
    over = budget["references_over_budget"]
    if not over:
        return None
    return (
        f"{over} of {budget['questions']} reference answers are longer than "
        f"eval.max_new_tokens ({budget['max_new_tokens']} tokens; the longest needs "
        f"{budget['longest_reference_tokens']}): answers that long are cut before their "
        f"final <ANSWER>: line, so exact match cannot count them. Set eval.max_new_tokens "
        f"to at least {budget['longest_reference_tokens']} for a fair exact match."
    )


def compute_metrics(
    registry: PluginRegistry,
    settings: EvalSettings,
    samples: list[EvalSample],
    symbols: list[str],
) -> dict[str, EvaluateResult]:
    """Every configured metric, each from the plugin that provides it."""
    results: dict[str, EvaluateResult] = {}
    for metric in settings.metrics:
        request = EvaluateRequest(
            metric=metric, samples=samples, symbols=symbols, settings=settings.model_dump()
        )
        results[metric] = EvaluateResult.model_validate(registry.call("evaluate", metric, request))
    return results


def apply_gate(
    gate: GateSettings,
    reference: dict[str, EvaluateResult],
    candidate: dict[str, EvaluateResult],
    *,
    questions: int | None = None,
) -> GateVerdict:
    """Compare the candidate with the reference model metric by metric.

    A regression is measured relative to the reference value for metrics above 1
    (perplexity) and absolutely for rates in [0, 1] (2 points by default), so a
    rate moving off zero is judged by ``max_regression``, not as infinitely worse.
    A metric the reference has a value for and the candidate has not fails the gate
    (quoting the metric's ``details["reason"]`` when it gives one), and so does a
    gate that judged nothing: no metric with a value for both models and no
    hallucination rate. ``questions``: how many test questions were asked, to say
    why nothing could be compared when there were none.
    """
    if not gate.enabled:
        return GateVerdict(True, ["gate disabled (eval.gate.enabled = false)"])
    reasons: list[str] = []
    compared = 0
    for name in dict.fromkeys([*candidate, *reference]):
        result, before = candidate.get(name), reference.get(name)
        if before is None or before.value is None:
            continue
        if result is None or result.value is None:
            why = result.details.get("reason") if result is not None else None
            reasons.append(
                f"{name}: no value for the fine-tuned model (the reference had "
                f"{before.value:.4g})" + (f": {why}" if isinstance(why, str) and why else "")
            )
            continue
        compared += 1
        change = result.value - before.value
        worse = -change if result.higher_is_better else change
        scale = max(abs(before.value), 1.0)
        if worse / scale > gate.max_regression:
            reasons.append(
                f"{name} regressed from {before.value:.4g} to {result.value:.4g} "
                f"(more than {gate.max_regression:.0%})"
            )
    hallucination = candidate.get("hallucination")
    rate = hallucination.value if hallucination else None
    if rate is not None and rate > gate.max_hallucination_rate:
        reasons.append(f"hallucination rate {rate:.2%} is above {gate.max_hallucination_rate:.0%}")
    if not compared and rate is None and not reasons:
        if questions == 0:
            why = "the test split has no questions (see validate/report.json)"
        elif not candidate and not reference:
            why = "no metric was computed (eval.metrics)"
        else:
            why = "no metric has a value for both the reference and the fine-tuned model"
        reasons.append(f"no metric could be compared: {why}")
    return GateVerdict(not reasons, reasons or ["no metric regressed beyond the tolerance"])


def evaluate_run(
    registry: PluginRegistry,
    section: EvalSettings,
    run_path: Path,
    trained: TrainResult,
    progress: Progress,
    reference: GateReference | None = None,
    gguf_export: GgufExport | None = None,
) -> tuple[dict[str, Any], list[Path]]:
    """The ``eval`` stage on one run: the models, every metric, the gate, the report.

    The base and the fine-tuned model always; the deployed model too when it is the
    gate's ``reference`` (see :mod:`forge_core.deployed`). With ``gguf_export`` (for a
    backend that runs GGUF files only) each model is exported first (see
    :mod:`forge_core.eval_gguf`). Returns the ``metrics.json``
    document (metrics per model, the gate's verdict, each metric's details) and the
    files it wrote: the HTML report and ``answers.jsonl``.
    """
    from forge_core.builtin.metrics import repository_symbols
    from forge_core.report import write_report

    examples = read_jsonl(run_path / "validate" / "test.jsonl", Example)
    examples = examples[: section.max_samples] if section.max_samples else examples
    units = read_jsonl(run_path / "mine" / "units.jsonl", CodeUnit)
    symbols = repository_symbols(units)
    test_files = {e.path for e in examples}
    held_out = [u for u in units if u.path in test_files][: section.max_samples or 64]
    results: dict[str, dict[str, EvaluateResult]] = {}
    samples: dict[str, list[EvalSample]] = {}
    reference = reference or GateReference()
    models = [
        EvalModel("base", trained.base_model),
        EvalModel("fine_tuned", trained.base_model, trained.adapter_dir),
    ]
    if reference.model is not None:
        models.append(reference.model)
    if gguf_export is not None:
        models = export_for_evaluation(
            registry, gguf_export, models, run_path / "eval" / "models", progress
        )
    progress.start("evaluating", len(models) * len(examples))
    for model in models:
        label = model.label
        code = code_samples(held_out)
        samples[label] = run_model(
            registry,
            section,
            model.model,
            model.adapter,
            examples,
            lambda n: progress.advance("evaluating", n),
            held_out_code=code,
        )
        results[label] = compute_metrics(registry, section, samples[label], symbols)
        if code and "perplexity" in registry.available("evaluate"):
            results[label]["code_perplexity"] = registry.call(
                "evaluate",
                "perplexity",
                EvaluateRequest(metric="perplexity", samples=code, symbols=symbols),
            ).model_copy(update={"metric": "code_perplexity"})
    progress.finish("evaluating")
    budget = generation_budget(samples["base"], section.max_new_tokens)
    warning = budget_warning(budget)
    if warning:
        progress.warn(warning)
    verdict = apply_gate(
        section.gate, results[reference.label], results["fine_tuned"], questions=len(examples)
    )
    verdict.reference = reference.description
    if reference.note:
        fallback = f"{reference.note}: compared with the base model instead"
        verdict.reasons.insert(0, fallback)
        progress.warn(fallback)
    verdict.reference_trained_on = sum(e.path in reference.trained_paths for e in examples)
    if verdict.reference_trained_on:
        overlap = (
            f"{verdict.reference_trained_on} of {len(examples)} test questions are about files "
            f"{reference.description} was trained on, which flatters it on those"
        )
        verdict.reasons.append(overlap)
        progress.warn(overlap)
    document = {
        "metrics": {
            label: {name: r.value for name, r in by_metric.items()}
            for label, by_metric in results.items()
        },
        "gate": verdict.as_json(),
        "generation": {**budget, "warning": warning},
        "details": {
            label: {n: r.model_dump(mode="json") for n, r in m.items()}
            for label, m in results.items()
        },
    }
    loss_png = Path(trained.plot_file) if trained.plot_file else None
    report = write_report(run_path, document, samples, loss_png)
    answers = write_answers(run_path / "eval" / "answers.jsonl", samples)
    return document, [report, answers]


def write_answers(path: Path, samples: dict[str, list[EvalSample]]) -> Path:
    """``eval/answers.jsonl``: each test question with the reference and every model's
    answer side by side (the report shows a selection; this file has them all)."""
    by_id: dict[str, dict[str, Any]] = {}
    for label, items in samples.items():
        for sample in items:
            row = by_id.setdefault(
                sample.id,
                {
                    "id": sample.id,
                    "question_type": sample.question_type,
                    "language": sample.language,
                    "question": sample.question,
                    "reference": sample.reference,
                },
            )
            row[label] = sample.prediction
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in by_id.values()]
    write_text_atomic(path, "".join(lines))
    return path

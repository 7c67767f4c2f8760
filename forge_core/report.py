"""The evaluation report: a self-contained ``eval/report.html`` and the terminal table.

Both read the document the ``eval`` stage writes to ``eval/metrics.json``::

    {"metrics": {"base": {name: value}, "fine_tuned": {name: value},
                 "deployed": {name: value}  (only when the gate compared with it)},
     "gate": {"passed": bool, "reasons": [...], "reference": "the base model"},
     "generation": {"max_new_tokens": int, "references_over_budget": int, "warning": ..., ...},
     "details": {"base": {name: EvaluateResult as JSON}, "fine_tuned": {...}}}

The HTML page has no external asset: inline CSS, inline SVG bars and the loss
curve embedded as a ``data:`` URI, so it can be mailed or archived as one file.
Every text from a model or a repository is escaped by the template engine.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from forge_core.contracts import EvalSample
from forge_core.files import write_text_atomic

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Comparison",
    "compare",
    "metric_rows",
    "print_metrics_table",
    "render_report",
    "write_report",
]

LABELS = ("base", "fine_tuned")
BREAKDOWNS = (("by_question_type", "Question type"), ("by_language", "Language"))
Verdict = Literal["better", "worse", "same", "none"]
RICH_STYLE: dict[str, str] = {"better": "green", "worse": "red", "same": "dim", "none": "dim"}
BAR_WIDTH = 120.0
#: How many samples the report shows; those where the two models differ come first.
MAX_SAMPLES = 30


# --------------------------------------------------------------------------- comparisons


def format_value(value: float | None) -> str:
    """A metric value with four significant digits; an em dash when there is none."""
    return "—" if value is None else f"{value:.4g}"


@dataclass(frozen=True)
class Comparison:
    """One metric's base and fine-tuned values, the change and whether it is an improvement."""

    name: str
    base: float | None
    fine_tuned: float | None
    higher_is_better: bool = True

    @property
    def delta(self) -> float | None:
        """Fine-tuned minus base."""
        if self.base is None or self.fine_tuned is None:
            return None
        return self.fine_tuned - self.base

    @property
    def relative(self) -> float | None:
        """The change as a fraction of the base value."""
        delta = self.delta
        if delta is None or self.base is None or self.base == 0:
            return None
        return delta / abs(self.base)

    @property
    def verdict(self) -> Verdict:
        """``better`` when the change goes the metric's good way, ``worse`` the other way."""
        delta = self.delta
        if delta is None:
            return "none"
        if delta == 0:
            return "same"
        return "better" if (delta > 0) == self.higher_is_better else "worse"

    @property
    def delta_text(self) -> str:
        """``+0.25 (+50.0%)``; an em dash when either side is missing."""
        delta = self.delta
        if delta is None:
            return "—"
        relative = self.relative
        return f"{delta:+.4g}" + (f" ({relative:+.1%})" if relative is not None else "")

    def bar_widths(self) -> tuple[float, float]:
        """Widths of the two SVG bars, scaled to the larger magnitude."""
        values = [abs(v) if v is not None else 0.0 for v in (self.base, self.fine_tuned)]
        top = max(values) or 1.0
        return (round(values[0] / top * BAR_WIDTH, 1), round(values[1] / top * BAR_WIDTH, 1))


def compare(name: str, base: Any, fine_tuned: Any, higher_is_better: bool) -> Comparison:
    """A comparison of two raw JSON values (non-numbers count as missing)."""

    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) else None

    return Comparison(name, number(base), number(fine_tuned), higher_is_better)


def result_of(document: Mapping[str, Any], label: str, metric: str) -> dict[str, Any]:
    """The stored EvaluateResult (as JSON) of one metric for one model, or {}."""
    details = document.get("details", {}).get(label, {})
    result = details.get(metric) if isinstance(details, dict) else None
    return result if isinstance(result, dict) else {}


def higher_is_better(document: Mapping[str, Any], metric: str) -> bool:
    """Whether higher is better for ``metric``, as the metric itself declared."""
    for label in LABELS:
        result = result_of(document, label, metric)
        if "higher_is_better" in result:
            return bool(result["higher_is_better"])
    return True


def metric_names(document: Mapping[str, Any]) -> list[str]:
    """Every metric of either model, in the order they were computed."""
    names: dict[str, None] = {}
    for label in LABELS:
        names.update(dict.fromkeys(document.get("metrics", {}).get(label, {})))
    return list(names)


def metric_rows(document: Mapping[str, Any]) -> list[Comparison]:
    """One comparison per metric: the rows of both the HTML and the terminal table."""
    metrics = document.get("metrics", {})
    return [
        compare(
            name,
            metrics.get("base", {}).get(name),
            metrics.get("fine_tuned", {}).get(name),
            higher_is_better(document, name),
        )
        for name in metric_names(document)
    ]


# --------------------------------------------------------------------------- breakdowns


@dataclass
class BreakdownTable:
    """One breakdown (question type or language): group → metric → comparison."""

    key: str
    title: str
    metrics: list[str]
    groups: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    cells: dict[str, dict[str, Comparison]] = field(default_factory=dict)


def breakdown_tables(document: Mapping[str, Any]) -> list[BreakdownTable]:
    """The per-question-type and per-language tables, from each metric's details."""
    tables = []
    for key, title in BREAKDOWNS:
        table = BreakdownTable(key, title, [], [])
        for metric in metric_names(document):
            by_label = {
                label: result_of(document, label, metric).get("details", {}).get(key, {})
                for label in LABELS
            }
            groups = sorted({g for values in by_label.values() for g in values})
            if not groups:
                continue
            table.metrics.append(metric)
            better = higher_is_better(document, metric)
            for group in groups:
                if group not in table.groups:
                    table.groups.append(group)
                table.cells.setdefault(group, {})[metric] = compare(
                    metric, by_label["base"].get(group), by_label["fine_tuned"].get(group), better
                )
                for label in LABELS:
                    counts = result_of(document, label, metric).get("details", {}).get("counts", {})
                    count = counts.get(key, {}).get(group, 0)
                    table.counts[group] = max(table.counts.get(group, 0), int(count))
        table.groups.sort()
        if table.metrics:
            tables.append(table)
    return tables


# --------------------------------------------------------------------------- samples


@dataclass
class SampleView:
    """One question with both models' answers and their per-sample scores."""

    id: str
    question_type: str
    language: str
    question: str
    prompt: str
    reference: str
    answers: dict[str, str]
    scores: list[Comparison]
    notes: dict[str, list[str]]
    differs: bool = False


def question_of(sample: EvalSample) -> str:
    """The question asked: the sample's own ``question`` when the synthesizer set one, else
    the end of the last user turn (after ``Question:`` when present)."""
    if sample.question:
        return sample.question.strip()
    users = [m.content for m in sample.prompt if m.role == "user"]
    text = users[-1] if users else sample.context
    _, mark, question = text.rpartition("Question:")
    return (question if mark else text).strip()


def sample_views(
    document: Mapping[str, Any], samples: Mapping[str, Sequence[EvalSample]], limit: int
) -> tuple[list[SampleView], int]:
    """The samples to show (those where the models differ first) and how many there are."""
    by_id = {
        label: {s.id: (i, s) for i, s in enumerate(samples.get(label, []))} for label in LABELS
    }
    ids = list(dict.fromkeys([*by_id["base"], *by_id["fine_tuned"]]))
    views = []
    for sample_id in ids:
        found = {label: by_id[label][sample_id] for label in LABELS if sample_id in by_id[label]}
        first = next(iter(found.values()))[1]
        scores: list[Comparison] = []
        for metric in metric_names(document):
            values = []
            for label in LABELS:
                per_sample = result_of(document, label, metric).get("per_sample", [])
                index = found[label][0] if label in found else -1
                values.append(per_sample[index] if 0 <= index < len(per_sample) else None)
            if any(v is not None for v in values):
                scores.append(
                    compare(metric, values[0], values[1], higher_is_better(document, metric))
                )
        notes = {label: sample_notes(document, label, sample_id) for label in LABELS}
        views.append(
            SampleView(
                id=sample_id,
                question_type=first.question_type,
                language=first.language,
                question=question_of(first),
                prompt="\n\n".join(f"[{m.role}]\n{m.content}" for m in first.prompt),
                reference=first.reference,
                answers={
                    label: found[label][1].prediction if label in found else "" for label in LABELS
                },
                scores=scores,
                notes=notes,
                differs=any(c.verdict in ("better", "worse") for c in scores),
            )
        )
    views.sort(key=lambda view: not view.differs)  # stable: keeps the order within each half
    return views[:limit], len(views)


def sample_notes(document: Mapping[str, Any], label: str, sample_id: str) -> list[str]:
    """What the metrics found wrong in one answer: phantom APIs, unfaithful quotes."""
    notes = []
    phantoms = result_of(document, label, "hallucination").get("details", {}).get("phantoms", {})
    if phantoms.get(sample_id):
        notes.append("phantom APIs: " + ", ".join(phantoms[sample_id]))
    quotes = result_of(document, label, "quote_fidelity").get("details", {})
    for span in quotes.get("unfaithful_quotes", {}).get(sample_id, []):
        notes.append(f"quote not in the context: {span}")
    return notes


# --------------------------------------------------------------------------- output


def png_data_uri(path: Path | None) -> str | None:
    """The PNG at ``path`` as a ``data:`` URI, or None when there is none."""
    if path is None or not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_report(
    document: Mapping[str, Any],
    samples: Mapping[str, Sequence[EvalSample]],
    loss_png: Path | None,
    *,
    title: str = "Forge evaluation",
    max_samples: int = MAX_SAMPLES,
) -> str:
    """The report page as one HTML string."""
    import jinja2

    template_text = resources.files("forge_core").joinpath("data/report.html.j2").read_text("utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["value"] = format_value
    shown, total = sample_views(document, samples, max_samples)
    gate = document.get("gate", {})
    return environment.from_string(template_text).render(
        title=title,
        rows=metric_rows(document),
        gate_passed=bool(gate.get("passed")),
        gate_reasons=[str(reason) for reason in gate.get("reasons", [])],
        gate_reference=str(gate.get("reference", "the base model")),
        deployed_metrics=document.get("metrics", {}).get("deployed"),
        generation_warning=document.get("generation", {}).get("warning"),
        loss_uri=png_data_uri(loss_png),
        breakdowns=breakdown_tables(document),
        samples=shown,
        sample_total=total,
        bar_width=BAR_WIDTH,
    )


def write_report(
    run_dir: Path,
    document: Mapping[str, Any],
    samples: Mapping[str, Sequence[EvalSample]],
    loss_png: Path | None,
) -> Path:
    """Write the self-contained ``eval/report.html`` of a run (atomically); return its path."""
    target = run_dir / "eval" / "report.html"
    html = render_report(document, samples, loss_png, title=f"Forge evaluation — {run_dir.name}")
    write_text_atomic(target, html)
    return target


def print_metrics_table(document: Mapping[str, Any], console: Console) -> None:
    """Print the base vs fine-tuned table and the gate verdict with rich."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="evaluation: base vs fine-tuned")
    table.add_column("metric")
    table.add_column("base", justify="right")
    table.add_column("fine-tuned", justify="right")
    table.add_column("change", justify="right")
    table.add_column("better", justify="center")
    deployed = document.get("metrics", {}).get("deployed")
    if deployed is not None:
        table.add_column("deployed", justify="right")
    for row in metric_rows(document):
        style = RICH_STYLE[row.verdict]
        cells = [
            escape(row.name),
            format_value(row.base),
            format_value(row.fine_tuned),
            f"[{style}]{row.delta_text}[/]",
            "higher" if row.higher_is_better else "lower",
        ]
        if deployed is not None:
            cells.append(format_value(deployed.get(row.name)))
        table.add_row(*cells)
    console.print(table)
    gate = document.get("gate", {})
    verdict = "[bold green]gate passed[/]" if gate.get("passed") else "[bold red]gate failed[/]"
    reference = gate.get("reference", "the base model")
    console.print(f"{verdict} (compared with {escape(str(reference))})")
    for reason in gate.get("reasons", []):
        console.print(f"  • {escape(str(reason))}")

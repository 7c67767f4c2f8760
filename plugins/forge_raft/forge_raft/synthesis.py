"""RAFT synthesis: a repository's units in, training examples out.

Read top to bottom: choose the question types and the units, index the
repository (BM25 for distractors, the call graph for call questions), then for
every unit and type ground a question in the code, assemble its context
(oracle with probability ``oracle_probability``, plus hard-negative
distractors, shuffled) and write the quoted answer. The optional teacher adds
free-form questions in the same format.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from forge_core.config import SynthSettings
from forge_core.contracts import (
    ChatMessage,
    CodeUnit,
    Example,
    SynthesizeRequest,
    SynthesizeResult,
)
from forge_core.mining import assign_unit_ids
from forge_core.validation import TokenCounter, token_counter
from forge_raft.answers import (
    Templates,
    check_answer,
    final_answer,
    format_answer,
    load_templates,
)
from forge_raft.calls import CallGraph
from forge_raft.code import displayed_units
from forge_raft.documents import Document, Documents
from forge_raft.questions import BUILDERS, QUESTION_TYPES, Grounded, QuestionContext, unit_facts
from forge_raft.retrieval import Distractors

__all__ = ["select_types", "skip_reason", "synthesize_examples"]


def select_types(names: list[str]) -> tuple[str, ...]:
    """The configured question types (all when empty); unknown names are an error."""
    unknown = [name for name in names if name not in BUILDERS]
    if unknown:
        raise ValueError(
            f"synth.question_types: unknown question type(s) {', '.join(map(repr, unknown))}; "
            f"valid types: {', '.join(QUESTION_TYPES)}"
        )
    return tuple(t for t in QUESTION_TYPES if t in names) if names else QUESTION_TYPES


def skip_reason(unit: CodeUnit, settings: SynthSettings) -> str | None:
    """Why no question is asked about ``unit`` (None: ask)."""
    if unit.quality.has_syntax_error:
        return "syntax_error"
    if unit.quality.is_test and not settings.include_tests:
        return "test"
    if unit.quality.looks_generated and not settings.include_generated:
        return "generated"
    return None


def example_id(unit: CodeUnit, question_type: str, variant: str) -> str:
    """A stable id: the same unit, type and variant always give the same id."""
    return hashlib.sha256(f"{unit.id}\0{question_type}\0{variant}".encode()).hexdigest()[:20]


def _rng(seed: int, *parts: str) -> random.Random:
    """A generator of its own for each unit and type, so filtering never shifts another's."""
    return random.Random("\0".join([str(seed), *parts]))


def common_names() -> frozenset[str]:
    """Names too common to tell which unit a call means (``templates/common_names.yaml``)."""
    text = resources.files("forge_raft").joinpath("templates/common_names.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return frozenset(name for names in data.values() for name in names)


#: Tokens kept spare below the request's ``max_tokens`` (which already leaves out the
#: chat template's own tokens: the pipeline measures them) for what joining parts can add.
TEMPLATE_TOKENS = 32
#: Tokens of the blank line between two documents of a context.
SEPARATOR_TOKENS = 2


@dataclass
class TokenBudget:
    """How many tokens an example may hold, counted as the validate stage counts them.

    A context's tokens are summed from its parts (the counter remembers each text, so
    a document is tokenised once per run), so fitting a context costs additions, not
    a tokenisation per try; the margin of :data:`TEMPLATE_TOKENS` covers the few
    tokens that joining parts can add.
    """

    max_tokens: int
    count: TokenCounter

    @classmethod
    def of(cls, max_tokens: int | None, tokenizer_file: str | None) -> TokenBudget | None:
        """The budget of a synthesis request, or None when it sets no limit."""
        if max_tokens is None:
            return None
        count, _ = token_counter(Path(tokenizer_file) if tokenizer_file else None)
        return cls(max(1, max_tokens - TEMPLATE_TOKENS), count)

    def document(self, document: Document) -> int:
        """Tokens of a rendered document, separator included."""
        return self.count(document.render()) + SEPARATOR_TOKENS


class ExampleMaker:
    """Assembles contexts and answers into :class:`Example` objects, counting as it goes."""

    def __init__(
        self,
        settings: SynthSettings,
        templates: Templates,
        documents: Documents,
        distractors: Distractors,
        units_by_id: dict[str, CodeUnit],
        stats: Counter[str],
        originals: dict[str, CodeUnit] | None = None,
        budget: TokenBudget | None = None,
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.documents = documents
        self.distractors = distractors
        self.units_by_id = units_by_id
        self.stats = stats
        self.originals = originals or {}
        self.budget = budget

    def make(
        self,
        unit: CodeUnit,
        question_type: str,
        variant: str,
        rng: random.Random,
        grounded: Grounded,
        question: str,
        answer: Callable[[], str],
    ) -> Example | None:
        """One example; None (and a ``dropped.*`` count) when its answer fails the checks."""
        present = rng.random() < self.settings.oracle_probability
        answer_docs = [grounded.oracle, *grounded.support]
        count = self.settings.distractors + (0 if present else len(answer_docs))
        avoid = [d.unit for d in grounded.support]
        avoid += [self.units_by_id[i] for i in sorted(grounded.avoid) if i in self.units_by_id]
        distractors = self.distractors.pick(unit, count, avoid, rng)
        distractor_docs = [self.documents.of(d) for d in distractors]
        documents = (answer_docs if present else []) + distractor_docs
        rng.shuffle(documents)
        if present:
            text = answer()
            mined = [self.originals.get(d.unit.id, d.unit) for d in answer_docs]
            problem = check_answer(
                text,
                [d.text for d in answer_docs],
                originals=[t for u in mined for t in (u.source, u.docstring or "")],
            )
        else:
            text = self._absent_answer(unit, documents, rng)
            problem = check_answer(text, [], need_quote=False)
        if problem is not None:
            self.stats[f"dropped.{problem.replace(' ', '_')}"] += 1
            return None
        if self.budget is not None:
            text = self._fit(unit, question, documents, distractor_docs, present, text, rng)
        user = self.templates.user_turn(documents, question)
        shown = {id(d) for d in documents}
        distractors = [
            u for u, d in zip(distractors, distractor_docs, strict=True) if id(d) in shown
        ]
        self.stats[f"questions.{question_type}"] += 1
        self.stats["oracle_absent"] += not present
        return Example(
            id=example_id(unit, question_type, variant),
            messages=[
                ChatMessage(role="system", content=self.templates.system),
                ChatMessage(role="user", content=user),
                ChatMessage(role="assistant", content=text),
            ],
            question_type=question_type,
            language=unit.language,
            path=unit.path,
            oracle_id=unit.id,
            oracle_in_context=present,
            distractor_ids=[d.id for d in distractors],
            support_ids=[d.unit.id for d in grounded.support] if present else [],
            question=question,
            final_answer=final_answer(text) or "",
        )

    def _fit(
        self,
        unit: CodeUnit,
        question: str,
        documents: list[Document],
        distractor_docs: list[Document],
        present: bool,
        text: str,
        rng: random.Random,
    ) -> str:
        """Drop distractors from ``documents`` until the example fits the token budget.

        The least similar distractor (picked last) goes first; the answer's documents
        stay (and one document when the oracle is absent). Returns the answer, which
        is written anew when it names the documents shown.
        """
        budget = self.budget
        assert budget is not None
        fixed = budget.count(self.templates.system) + budget.count(
            self.templates.user_turn([], question)
        )
        answer_tokens = budget.count(text)
        context = sum(budget.document(d) for d in documents)
        droppable = distractor_docs[::-1] if present else distractor_docs[:0:-1]
        while droppable and fixed + context + answer_tokens > budget.max_tokens:
            dropped = droppable.pop(0)
            del documents[next(i for i, d in enumerate(documents) if d is dropped)]
            context -= budget.document(dropped)
            self.stats["context.distractors_dropped"] += 1
            if not present:  # that answer names the documents shown
                text = self._absent_answer(unit, documents, rng)
                answer_tokens = budget.count(text)
        if fixed + context + answer_tokens > budget.max_tokens:
            self.stats["context.over_budget"] += 1
        return text

    def _absent_answer(self, unit: CodeUnit, documents: list[Document], rng: random.Random) -> str:
        """The answer when the oracle is not in the context: say so, quote nothing."""
        facts = {
            **unit_facts(unit),
            "shown": [{"name": d.unit.qualified_name, "path": d.unit.path} for d in documents],
        }
        reasoning = rng.choice(self.templates.absent_reasoning).render(**facts)
        return format_answer(reasoning, self.templates.absent_answer.render(**facts).strip())

    def grounded(
        self, unit: CodeUnit, question_type: str, grounded: Grounded, seed: int
    ) -> Example | None:
        """An example of a grounded question type."""
        rng = _rng(seed, unit.id, question_type, "example")
        question = self.templates.render(question_type, "question", rng, **grounded.facts)

        def answer() -> str:
            reasoning = self.templates.render(question_type, "reasoning", rng, **grounded.facts)
            final = self.templates.render(question_type, "answer", rng, **grounded.facts)
            return format_answer(reasoning, final)

        return self.make(unit, question_type, "0", rng, grounded, question, answer)


def eligible_units(
    units: Iterable[CodeUnit], settings: SynthSettings, stats: Counter[str]
) -> list[CodeUnit]:
    """The units questions are asked about; the others are counted by reason."""
    chosen = []
    for unit in units:
        reason = skip_reason(unit, settings)
        if reason is None:
            chosen.append(unit)
        else:
            stats[f"skipped.{reason}"] += 1
    return chosen


def synthesize_examples(request: SynthesizeRequest) -> SynthesizeResult:
    """Make RAFT examples for every eligible unit and configured question type."""
    settings = SynthSettings.model_validate(request.settings)
    types = select_types(settings.question_types)
    all_units = request.units
    if any(not unit.id for unit in all_units):  # ids come from the core; fill them if absent
        all_units = assign_unit_ids([unit.model_copy() for unit in all_units])
    originals = {unit.id: unit for unit in all_units}
    all_units = displayed_units(all_units)
    stats: Counter[str] = Counter(units=len(all_units))
    units = eligible_units(all_units, settings, stats)
    stats["units.eligible"] = len(units)
    documents = Documents(settings.max_document_chars)
    maker = ExampleMaker(
        settings,
        load_templates(),
        documents,
        Distractors(all_units),
        {u.id: u for u in all_units},
        stats,
        originals,
        TokenBudget.of(request.max_tokens, request.tokenizer_file),
    )
    graph = CallGraph(all_units, common_names())
    examples: list[Example] = []
    for unit in units:
        for question_type in types:
            rng = _rng(request.seed, unit.id, question_type)
            context = QuestionContext(graph, documents, rng, originals)
            grounded = BUILDERS[question_type](unit, context)
            if grounded is None:
                continue
            example = maker.grounded(unit, question_type, grounded, request.seed)
            if example is not None:
                examples.append(example)
    if settings.teacher.enabled:
        from forge_raft.teacher import teacher_examples

        cache_dir = Path(request.cache_dir) if request.cache_dir else None
        examples += teacher_examples(units, settings.teacher, cache_dir, maker, request.seed)
    return SynthesizeResult(examples=examples, stats=dict(sorted(stats.items())))

"""Contexts made to fit the model: distractors dropped until an example fits its token budget."""

from __future__ import annotations

from collections import Counter

from raft_corpus import documents_of

from forge_core.contracts import CodeUnit, Example, SynthesizeRequest
from forge_raft.synthesis import TEMPLATE_TOKENS, synthesize_examples


def tokens(example: Example) -> int:
    """What the validate stage counts without a tokenizer: characters / 4 per message."""
    return sum(max(1, len(m.content) // 4) for m in example.messages)


def synthesize(units: list[CodeUnit], max_tokens: int | None) -> tuple[list[Example], Counter]:
    result = synthesize_examples(
        SynthesizeRequest(units=units, settings={"distractors": 4}, max_tokens=max_tokens)
    )
    return result.examples, Counter(result.stats)


def test_examples_fit_the_budget_by_dropping_distractors_only(units: list[CodeUnit]) -> None:
    free, _ = synthesize(units, None)
    budget = 700
    fitted, stats = synthesize(units, budget)
    assert [e.id for e in fitted] == [e.id for e in free]  # the same questions and answers
    too_long = [e for e in free if tokens(e) > budget - TEMPLATE_TOKENS]
    assert too_long, "the corpus must hold examples that do not fit, or this proves nothing"
    assert stats["context.distractors_dropped"] > 0
    over = [e for e in fitted if tokens(e) > budget - TEMPLATE_TOKENS]
    assert len(over) == stats["context.over_budget"] < len(too_long)
    for before, after in zip(free, fitted, strict=True):
        shown = {(d.path, d.name) for d in documents_of(after)}
        assert (
            after.messages[-1].content == before.messages[-1].content or not after.oracle_in_context
        )
        if after.oracle_in_context:  # the oracle (and what the answer quotes) always stays
            oracle = next(u for u in units if u.id == after.oracle_id)
            assert (oracle.path, oracle.qualified_name) in shown
        assert set(after.distractor_ids) <= set(before.distractor_ids)
        distractors = {u.id: u for u in units if u.id in after.distractor_ids}
        assert {(u.path, u.qualified_name) for u in distractors.values()} <= shown
        assert len(documents_of(after)) >= 1
        if tokens(after) > budget - TEMPLATE_TOKENS:  # over only when nothing is left to drop
            left = set(after.distractor_ids)
            assert not left or (not after.oracle_in_context and len(left) == 1)


def test_no_budget_no_change(units: list[CodeUnit], examples: list[Example]) -> None:
    again = synthesize_examples(SynthesizeRequest(units=units)).examples
    assert [e.model_dump() for e in again] == [e.model_dump() for e in examples]

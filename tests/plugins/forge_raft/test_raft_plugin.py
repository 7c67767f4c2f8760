"""The hook, its settings, what it skips, determinism and the shape of its output."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from raft_corpus import documents_of, synthesize

from forge_core.contracts import CodeUnit, Example, SynthesizeRequest, SynthesizeResult
from forge_core.plugins import PluginRegistry
from forge_raft import plugin
from forge_raft.answers import load_templates
from forge_raft.questions import QUESTION_TYPES
from forge_raft.synthesis import synthesize_examples


def test_entry_point_provides_raft(units: list[CodeUnit]) -> None:
    """Installed, the plugin answers `synthesize raft` through the registry."""
    registry = PluginRegistry()
    assert registry.info("raft").status == "loaded"
    assert registry.find("synthesize", "raft") == "raft"
    result = SynthesizeResult.model_validate(
        registry.call("synthesize", "raft", SynthesizeRequest(units=units[:20]))
    )
    assert result.examples


def test_plugin_module_stays_light() -> None:
    """plugin.py holds only the hooks; the work modules load on the first call."""
    assert [name for name in vars(plugin) if not name.startswith("_")] == [
        "annotations",
        "TYPE_CHECKING",
        "hookimpl",
        "synthesize",
        "register_cli_commands",
    ]


def test_deterministic_for_a_seed(units: list[CodeUnit], examples: list[Example]) -> None:
    """The same seed gives the same dataset; another seed another draw."""
    again = synthesize(units)
    assert [e.model_dump() for e in again] == [e.model_dump() for e in examples]
    other = synthesize(units, seed=1)
    assert [e.id for e in other] == [e.id for e in examples]  # ids name unit, type, variant
    assert [e.messages for e in other] != [e.messages for e in examples]


def test_ids_are_stable_and_unique(examples: list[Example]) -> None:
    """One id per (unit, type, variant), the same on every run."""
    assert len({e.id for e in examples}) == len(examples)


def test_question_types_restrict_and_keep_the_draws(
    units: list[CodeUnit], examples: list[Example]
) -> None:
    """Restricting the types leaves the other examples as they were."""
    only = synthesize(units, question_types=["calls", "usage"])
    assert {e.question_type for e in only} == {"calls", "usage"}
    assert [e.model_dump() for e in only] == [
        e.model_dump() for e in examples if e.question_type in ("calls", "usage")
    ]


def test_unknown_question_type_names_the_valid_ones(units: list[CodeUnit]) -> None:
    """A typo is an error that lists what exists."""
    with pytest.raises(ValueError, match=r"unknown question type.*'purpse'") as error:
        synthesize(units, question_types=["purpose", "purpse"])
    for name in QUESTION_TYPES:
        assert name in str(error.value)


def test_settings_are_validated(units: list[CodeUnit]) -> None:
    """The `synth` section is checked by forge_core's SynthSettings (extra keys forbidden)."""
    with pytest.raises(ValueError, match="distractor"):
        synthesize(units, distractor=3)


def test_skipped_units_are_counted(units: list[CodeUnit]) -> None:
    """Syntax errors, tests and generated code: no questions, counted by reason."""
    result = synthesize_examples(SynthesizeRequest(units=units))
    oracles = {e.oracle_id for e in result.examples}
    by_reason = Counter()
    for unit in units:
        if unit.quality.has_syntax_error:
            by_reason["syntax_error"] += 1
        elif unit.quality.is_test:
            by_reason["test"] += 1
        elif unit.quality.looks_generated:
            by_reason["generated"] += 1
        else:
            continue
        assert unit.id not in oracles
    assert all(by_reason[r] > 0 for r in ("syntax_error", "test", "generated"))
    for reason, count in by_reason.items():
        assert result.stats[f"skipped.{reason}"] == count
    assert result.stats["units"] == len(units)
    assert result.stats["units.eligible"] == len(units) - sum(by_reason.values())
    for kind in QUESTION_TYPES:
        made = sum(e.question_type == kind for e in result.examples)
        assert result.stats[f"questions.{kind}"] == made
    absent = sum(not e.oracle_in_context for e in result.examples)
    assert result.stats["oracle_absent"] == absent


def test_include_tests_and_generated(units: list[CodeUnit]) -> None:
    """With include_tests / include_generated, those units get questions too."""
    examples = synthesize(units, include_tests=True, include_generated=True)
    oracles = {e.oracle_id for e in examples}
    assert "python/tests/test_stock.py::test_withdraw_takes_units_out" in oracles
    assert "python/inventory/shop_pb2.py::_build_descriptor" in oracles


def test_oracle_probability_is_respected(units: list[CodeUnit]) -> None:
    """Over many examples the share with the oracle is close to oracle_probability."""
    for probability in (0.0, 0.5, 0.8, 1.0):
        examples = [
            e for seed in range(3) for e in synthesize(units, seed, oracle_probability=probability)
        ]
        share = sum(e.oracle_in_context for e in examples) / len(examples)
        assert len(examples) > 500
        assert abs(share - probability) < 0.05, (probability, share)


def test_document_count_does_not_give_the_answer_away(examples: list[Example]) -> None:
    """An absent oracle is replaced by distractors: the document count tells nothing."""
    for example in examples:
        shown = documents_of(example)
        if example.oracle_in_context:
            assert len(example.distractor_ids) == 3
        else:
            assert len(example.distractor_ids) == len(shown) >= 4


def test_distractors_setting(units: list[CodeUnit]) -> None:
    """`distractors` is the number of hard negatives next to the oracle."""
    for example in synthesize(units, distractors=1, oracle_probability=1.0):
        assert len(example.distractor_ids) == 1
    for example in synthesize(units, distractors=0, oracle_probability=1.0):
        assert example.distractor_ids == []


def test_examples_round_trip_as_json(examples: list[Example]) -> None:
    """Examples are JSON lines in the chat-messages shape TRL reads."""
    for example in examples[:50]:
        data = json.loads(example.model_dump_json())
        assert [m["role"] for m in data["messages"]] == ["system", "user", "assistant"]
        assert Example.model_validate(data) == example


def test_templates_have_several_phrasings() -> None:
    """Question wording is data, with several phrasings per type."""
    templates = load_templates()
    assert set(templates.types) == set(QUESTION_TYPES)
    for kind in QUESTION_TYPES:
        assert templates.phrasings(kind, "question") >= 3
        assert templates.phrasings(kind, "reasoning") >= 2
    assert len(templates.absent_reasoning) >= 2


def test_phrasings_are_all_used(examples: list[Example]) -> None:
    """The seeded choice reaches every question phrasing of the common types."""
    templates = load_templates()
    for kind in ("location", "parameters"):
        questions = {
            e.messages[1].content.rsplit("\nQuestion: ", 1)[1].split("`")[0]
            for e in examples
            if e.question_type == kind
        }
        assert len(questions) >= min(3, templates.phrasings(kind, "question"))


def test_forge_core_validation_accepts_the_examples(
    examples: list[Example], by_id: dict[str, CodeUnit]
) -> None:
    """The validate stage's schema and grounding checks keep the examples.

    `callers` and `usage` quote the calling unit, not the oracle: forge_core's
    grounding check only reads the oracle, so they wait on a core change (README).
    """
    from forge_core.builtin.checks import check_grounded, check_schema
    from forge_core.config import ValidationSettings
    from forge_core.validation import ValidationContext

    context = ValidationContext(by_id, ValidationSettings(), lambda text: len(text) // 4)
    for example in examples:
        assert check_schema(example, context) is None
        if example.question_type not in ("callers", "usage") or not example.oracle_in_context:
            assert check_grounded(example, context) is None, example.id

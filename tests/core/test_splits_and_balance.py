"""The split gives test a file whenever it can, and the type cap holds for every type."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from forge_core.config import ValidationSettings
from forge_core.contracts import ChatMessage, Example
from forge_core.validation import (
    ValidationContext,
    assign_splits,
    cap_question_types,
    type_cap,
    validate_examples,
)


def example(index: int, qtype: str = "purpose", path: str | None = None) -> Example:
    return Example(
        id=f"e{index}",
        messages=[
            ChatMessage(role="user", content=f"What does f{index} do?"),
            ChatMessage(role="assistant", content=f"It adds {index}.\n<ANSWER>: adds {index}"),
        ],
        question_type=qtype,
        language="python",
        path=path or f"f{index}.py",
        oracle_id=f"u{index}",
    )


def validate(examples: list[Example], **settings: object):  # type: ignore[no-untyped-def]
    context = ValidationContext(
        {}, ValidationSettings(min_tokens=1, near_duplicate_threshold=1.0, **settings), len
    )
    return validate_examples(examples, context, [])


@pytest.mark.parametrize("split_by", ["file", "random"])
def test_two_files_give_test_one(split_by: str) -> None:
    examples = [example(i, path=f"m{i % 2}.py") for i in range(6)]
    for e in examples:
        e.oracle_id = e.path
    assign_splits(examples, ValidationSettings(split_by=split_by))  # type: ignore[arg-type]
    by_split = {name: {e.path for e in examples if e.split == name} for name in ("train", "test")}
    assert len(by_split["test"]) == 1 and len(by_split["train"]) == 1
    assert all(e.split != "valid" for e in examples)


def test_large_fractions_leave_train_a_file() -> None:
    examples = [example(i, path=f"m{i % 3}.py") for i in range(6)]
    assign_splits(examples, ValidationSettings(test_fraction=0.6, valid_fraction=0.6))
    assert Counter(e.split for e in examples) == {"test": 4, "train": 2}


def test_one_file_leaves_test_empty_and_the_report_says_so() -> None:
    splits, report = validate([example(i, path="only.py") for i in range(4)])
    assert len(splits["test"]) == 0 and len(splits["train"]) == 4
    assert report.warnings == [
        "the test split is empty: every kept example is about one file, and a file's "
        "examples stay in one split; eval will have no question to score and its gate will "
        "fail (mine a repository with more files, or set validation.split_by = 'random')"
    ]
    assert report.as_json()["warnings"] == report.warnings
    _, zero = validate([example(i) for i in range(4)], test_fraction=0.0)
    assert zero.warnings[0].startswith("the test split is empty: validation.test_fraction is 0")
    _, fine = validate([example(i) for i in range(4)])
    assert fine.warnings == []


def test_two_dominant_types_are_both_capped() -> None:
    examples = [example(i, "purpose") for i in range(100)]
    examples += [example(100 + i, "callers") for i in range(100)]
    examples.append(example(300, "signature"))
    kept = Counter(e.question_type for e in cap_question_types(examples, 0.4, 0))
    assert kept == {"purpose": 2, "callers": 2, "signature": 1}
    more = [*examples, *(example(400 + i, "signature") for i in range(40))]
    kept = Counter(e.question_type for e in cap_question_types(more, 0.4, 0))
    assert kept == {"purpose": 82, "callers": 82, "signature": 41}  # 82 / 205 = 40%


def test_the_cap_holds_for_every_type_and_keeps_the_most() -> None:
    rng = random.Random(7)
    for _ in range(300):
        counts = Counter({f"t{t}": rng.randint(1, 60) for t in range(rng.randint(1, 6))})
        share = rng.choice([0.2, 0.25, 0.3, 0.4, 0.5, 0.75])
        cap = type_cap(counts, share)
        kept = {t: min(n, cap) if cap else n for t, n in counts.items()}
        total = sum(kept.values())
        best = max(share, 1 / len(counts))
        assert max(kept.values()) <= best * total + 1e-9, (counts, share, cap)
        if cap is not None:  # one more for every capped type would break the share
            over = {t: min(n, cap + 1) for t, n in counts.items()}
            assert max(over.values()) > best * sum(over.values()), (counts, share, cap)


def test_too_few_types_for_the_share_are_evened_out_and_reported() -> None:
    examples = [example(i, "purpose") for i in range(30)] + [
        example(30 + i, "calls") for i in range(10)
    ]
    assert type_cap(Counter(e.question_type for e in examples), 0.4) == 10
    _, report = validate(examples, max_type_share=0.4)
    assert report.question_types == {"purpose": 10, "calls": 10}
    assert report.warnings[0] == (
        "only 2 question types: validation.max_type_share (40%) cannot hold, so each type "
        "was cut to at most 50% instead"
    )


def test_capping_is_deterministic_and_seeded() -> None:
    examples = [example(i, "purpose") for i in range(50)] + [
        example(50 + i, t) for i, t in enumerate(["calls"] * 5 + ["name"] * 5)
    ]
    first = [e.id for e in cap_question_types(examples, 0.4, 3)]
    assert first == [e.id for e in cap_question_types(examples, 0.4, 3)]
    kept = Counter(e.question_type for e in cap_question_types(examples, 0.4, 3))
    assert kept == {"purpose": 6, "calls": 5, "name": 5}  # 6 / 16 = 37.5%
    other = {e.id for e in cap_question_types(examples, 0.4, 4)}
    assert other != set(first) and len(other) == len(first)

"""The ``validate`` stage's work: check examples, remove duplicates, split.

Splitting is by file by default, so test questions are about code the model
never saw in training.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field

from forge_core.config import ValidationSettings
from forge_core.contracts import Example, Split


@dataclass
class ValidationReport:
    """Counts of what was kept and rejected, by reason."""

    received: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    splits: dict[str, int] = field(default_factory=dict)
    question_types: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        return {
            "received": self.received,
            "kept": self.kept,
            "rejected": dict(sorted(self.rejected.items())),
            "splits": self.splits,
            "question_types": dict(sorted(self.question_types.items())),
        }


def check_example(example: Example) -> str | None:
    """Return the reason an example is unusable, or None."""
    roles = [m.role for m in example.messages]
    if "user" not in roles or roles[-1] != "assistant":
        return "messages must contain a user turn and end with the assistant"
    if any(not m.content.strip() for m in example.messages):
        return "empty message"
    return None


def exact_key(example: Example) -> str:
    """Identity of an example's content: the question and the answer."""
    text = "\x00".join(m.content.strip() for m in example.messages if m.role != "system")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assign_splits(examples: list[Example], settings: ValidationSettings) -> list[Example]:
    """Assign train/valid/test, grouping by file (default) or per example."""

    def key(example: Example) -> str:
        return example.path if settings.split_by == "file" else example.id

    groups = sorted({key(e) for e in examples})
    random.Random(settings.seed).shuffle(groups)
    n_test = round(len(groups) * settings.test_fraction)
    n_valid = round(len(groups) * settings.valid_fraction)
    if len(groups) >= 3:
        n_test, n_valid = max(n_test, 1), max(n_valid, 1)
    split_of: dict[str, Split] = {}
    for index, group in enumerate(groups):
        split_of[group] = (
            "test" if index < n_test else "valid" if index < n_test + n_valid else "train"
        )
    for example in examples:
        example.split = split_of[key(example)]
    return examples


def validate_examples(
    examples: list[Example], settings: ValidationSettings
) -> tuple[dict[str, list[Example]], ValidationReport]:
    """Check, deduplicate and split ``examples``."""
    report = ValidationReport(received=len(examples))
    kept: list[Example] = []
    seen: set[str] = set()
    for example in examples:
        reason = check_example(example)
        if reason is None:
            key = exact_key(example)
            reason = "exact duplicate" if key in seen else None
            seen.add(key)
        if reason is not None:
            report.rejected[reason] += 1
            continue
        kept.append(example)
    assign_splits(kept, settings)
    splits: dict[str, list[Example]] = {"train": [], "valid": [], "test": []}
    for example in kept:
        splits[example.split or "train"].append(example)
        report.question_types[example.question_type] += 1
    report.kept = len(kept)
    report.splits = {name: len(items) for name, items in splits.items()}
    return splits, report

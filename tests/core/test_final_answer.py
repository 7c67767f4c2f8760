"""The final answer is read the way the RAFT synthesizer writes it."""

from __future__ import annotations

import pytest

from forge_core.builtin.metrics import normalise_answer
from forge_core.validation import final_answer

CODE = 'def check(text):\n    if "<ANSWER>:" not in text:\n        return "no final answer line"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reasoning\n<ANSWER>: load", "load"),
        (f"reasoning\n<ANSWER>: {CODE}", CODE),
        (f'quoting ##begin_quote##x = "<ANSWER>: y"##end_quote##\n<ANSWER>: {CODE}', CODE),
        ("<ANSWER>: first\n<ANSWER>: second", "first\n<ANSWER>: second"),
        # A model that strays from the layout: indented, without the space, mid-line.
        ("reasoning\n  <ANSWER>:load", "load"),
        ("so the answer is <ANSWER>: x, not <ANSWER>: y", "y"),
        ("no mark at all", None),
        ("reasoning\n<ANSWER>: ", ""),
    ],
)
def test_final_answer_follows_the_raft_layout(text: str, expected: str | None) -> None:
    assert final_answer(text) == expected


def test_quoted_answer_marks_do_not_cut_the_answer_for_exact_match() -> None:
    reference = f"reasoning\n<ANSWER>: {CODE}"
    wrong = (
        'reasoning\n<ANSWER>: def other():\n    x = "<ANSWER>:" not in text:\n'
        '        return "no final answer line"'
    )
    assert normalise_answer(reference).startswith("def check(text):")
    assert normalise_answer(wrong) != normalise_answer(reference)


def test_final_answer_agrees_with_the_raft_synthesizer() -> None:
    answers = pytest.importorskip("forge_raft.answers")
    for final in ("load", CODE, "a\n<ANSWER>: b"):
        text = answers.format_answer("reasoning with `<ANSWER>:` inside\n<ANSWER>:x", final)
        assert final_answer(text) == answers.final_answer(text).strip() == final

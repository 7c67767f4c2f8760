"""Every example of every question type, checked against the unit it is about.

Runs over the whole fixture corpus (this plugin's fixtures and the language
plugins' fixtures, Python, JavaScript and Go), with the default settings and
with documents cut short, so truncation is exercised too.
"""

from __future__ import annotations

import ast
import re

import pytest
from raft_corpus import ShownDocument, documents_of, synthesize

from forge_core.contracts import CodeUnit, Example, UnitKind
from forge_raft.answers import ANSWER_PREFIX, extract_quotes
from forge_raft.questions import QUESTION_TYPES

ABSENT = "The provided context does not contain"


def units_shown(document: ShownDocument, units: list[CodeUnit]) -> list[CodeUnit]:
    """The units a document header names (getter and setter share a name)."""
    return [u for u in units if u.path == document.path and u.qualified_name == document.name]


def first_sentence(docstring: str) -> str:
    """The first sentence of a docstring or doc comment, markers removed (test's own reading)."""
    text = re.sub(r"^\s*(/\*\*?|\*/|\*|//|#)", " ", docstring, flags=re.MULTILINE)
    text = text.replace("*/", " ")
    paragraph = re.split(r"\n\s*\n|\n\s*@", text.strip())[0]
    words = " ".join(paragraph.split())
    return re.split(r"(?<=[.!?])\s", words)[0]


def called(name: str, source: str) -> bool:
    """``source`` has a call of ``name`` (``name(``, ``x.name(``, ``name[T](``)."""
    return re.search(rf"(?<![\w$]){re.escape(name)}\s*(\[[^\]]*\]\s*)?\(", source) is not None


def backticked(text: str) -> list[str]:
    """The `names` of a sentence."""
    return re.findall(r"`([^`]+)`", text)


def check_example(example: Example, units: list[CodeUnit], by_id: dict[str, CodeUnit]) -> None:
    """Every property an example must have, for its question type."""
    oracle = by_id[example.oracle_id]
    roles = [m.role for m in example.messages]
    assert roles == ["system", "user", "assistant"]
    answer = example.messages[2].content
    assert f"\n{ANSWER_PREFIX}" in answer
    assert answer.split(f"\n{ANSWER_PREFIX}", 1)[1] == example.final_answer
    assert example.language == oracle.language and example.path == oracle.path
    documents = documents_of(example)
    shown_ids = {u.id for d in documents for u in units_shown(d, units)}
    # distractors: never the oracle, a copy of it, or a unit that holds it or that it holds
    for distractor_id in example.distractor_ids:
        distractor = by_id[distractor_id]
        assert distractor.id != oracle.id
        assert distractor.content_hash != oracle.content_hash
        assert not (
            distractor.path == oracle.path
            and (
                distractor.start_byte <= oracle.start_byte <= oracle.end_byte <= distractor.end_byte
                or oracle.start_byte
                <= distractor.start_byte
                <= distractor.end_byte
                <= oracle.end_byte
            )
        )
        assert distractor_id in shown_ids
    oracle_docs = [d for d in documents if oracle in units_shown(d, units)]
    quotes = extract_quotes(answer)
    if not example.oracle_in_context:
        assert not oracle_docs
        assert not quotes
        assert example.final_answer.startswith(ABSENT)
        assert f"`{oracle.qualified_name}`" in example.final_answer
        if len(oracle.source) > 40:
            assert all(oracle.source not in d.body for d in documents)
        return
    assert len(oracle_docs) == 1
    oracle_doc = oracle_docs[0]
    support = [
        d
        for d in documents
        if d is not oracle_doc
        and d.path
        and not set(u.id for u in units_shown(d, units)) & set(example.distractor_ids)
    ]
    assert quotes, "an answer with the oracle in context quotes it"
    for quote in quotes:
        bearing = [d for d in [oracle_doc, *support] if quote in d.body]
        assert bearing, f"quote not verbatim in an answer document: {quote!r}"
        owners = [u for d in bearing for u in units_shown(d, units)]
        # as forge_core's grounding check reads it: verbatim in the mined source or docstring
        assert any(quote in u.source or quote in (u.docstring or "") for u in owners), quote
        if example.question_type not in ("callers", "usage"):
            assert oracle in owners
    check_final_answer(example, oracle, oracle_doc, support, units)


def check_final_answer(
    example: Example,
    oracle: CodeUnit,
    oracle_doc: ShownDocument,
    support: list[ShownDocument],
    units: list[CodeUnit],
) -> None:
    """The final answer is right for the unit, per question type."""
    final = example.final_answer
    kind = example.question_type
    if kind == "purpose":
        assert oracle.docstring
        assert first_sentence(oracle.docstring) in " ".join(final.split())
    elif kind == "parameters":
        assert oracle.kind in (UnitKind.FUNCTION, UnitKind.METHOD)
        if oracle.language == "python":
            tree = ast.parse(oracle.signature.strip() + "\n    pass\n")
            arguments = tree.body[0].args  # type: ignore[attr-defined]
            names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
            names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
            if tree.body[0].returns is not None:  # type: ignore[attr-defined]
                assert ast.unparse(tree.body[0].returns) in final  # type: ignore[attr-defined]
        else:
            taken = final.split(" and returns ", 1)[0].split(" takes ", 1)[-1]
            while re.search(r"\([^()]*\)", taken):  # drop the (type, default) details
                taken = re.sub(r"\([^()]*\)", "", taken)
            names = backticked(taken)
        for name in names:
            assert f"`{name}`" in final
            assert name in oracle.signature
    elif kind == "location":
        assert f"`{oracle.path}`" in final
        assert f"lines {oracle.start_line}-{oracle.end_line}" in final
        # ... and the answer is read off the context: the oracle's header carries the span
        assert oracle_doc.lines == f"{oracle.start_line}-{oracle.end_line}"
        assert f"`{oracle.qualified_name}`" in final
    elif kind == "calls":
        callees = backticked(final.split(" calls ", 1)[1])
        assert callees
        for name in callees:
            assert name in oracle.references
            assert called(name, oracle.source.replace(oracle.signature, ""))
            assert any(u.name == name and u.id != oracle.id for u in units)
    elif kind == "callers":
        named = re.findall(r"`([^`]+)` in `([^`]+)`", final)
        assert named and len(named) == len(support)
        for name, path in named:
            callers = [u for u in units if u.qualified_name == name and u.path == path]
            assert any(called(oracle.name, u.source) for u in callers)
            assert any(d.name == name and d.path == path for d in support)
    elif kind == "usage":
        call = final.split(": ", 1)[1]
        assert called(oracle.name, call)
        assert any(call in d.body for d in support)
        assert any(call in u.source for d in support for u in units_shown(d, units))
    elif kind == "docstring":
        assert final == oracle.docstring
        assert oracle.docstring not in oracle_doc.body
    elif kind == "implement":
        assert [line.strip() for line in final.split("\n")] == [
            line.strip() for line in oracle.source.split("\n")
        ]
        if oracle.language == "python":
            ast.parse(final)
        body_lines = [line.strip() for line in oracle.source.split("\n")[1:] if line.strip()]
        code_lines = [line for line in body_lines if not line.startswith(('"', "'", "}"))]
        assert not any(line in oracle_doc.body for line in code_lines[-1:])
    else:  # pragma: no cover - every type is listed above
        pytest.fail(f"unchecked question type {kind}")


def test_every_example_is_grounded(examples: list[Example], units, by_id) -> None:
    """Every example of every type: quotes verbatim, final answer right, distractors clean."""
    assert {e.question_type for e in examples} == set(QUESTION_TYPES)
    for example in examples:
        check_example(example, units, by_id)


def test_examples_with_documents_cut_short(units, by_id) -> None:
    """Quotes come from the visible part of a cut document, never from what was cut."""
    short = synthesize(units, max_document_chars=160, oracle_probability=0.9)
    assert any("[... truncated ...]" in e.messages[1].content for e in short)
    for example in short:
        check_example(example, units, by_id)


def test_every_type_has_oracle_present_and_absent_examples(units) -> None:
    """Over several seeds, every type gets both kinds of context."""
    seen = set()
    for seed in range(4):
        for example in synthesize(units, seed=seed):
            seen.add((example.question_type, example.oracle_in_context))
    assert seen == {(t, present) for t in QUESTION_TYPES for present in (True, False)}

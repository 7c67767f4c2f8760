"""Grounding a question in the repository's code, and ``forge ask``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from raft_corpus import DOCUMENT

from forge_core.cli import main
from forge_core.config import ForgeSettings, SynthSettings
from forge_core.contracts import CodeUnit, DeployResult, Example
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_raft.answers import load_templates
from forge_raft.grounding import Grounding, named_identifiers

SAMPLE_REPO = Path(__file__).resolve().parents[2] / "fixtures" / "sample_repo"


@pytest.fixture(scope="module")
def grounding(units: list[CodeUnit]) -> Grounding:
    return Grounding(units, SynthSettings().max_document_chars)


def shown(grounding: Grounding, positions: list[int]) -> list[tuple[str, str]]:
    return [(grounding.units[i].path, grounding.units[i].qualified_name) for i in positions]


def test_named_identifiers_are_the_words_written_as_code() -> None:
    """Backticks, a call, `_`, `.`, `$` or an inner capital make a word code; English is not."""
    question = (
        "How do I run `Stock.withdraw`, parseHeader() or run_all, and `run` or $scope? Run() it"
    )
    assert named_identifiers(question) == [
        "Stock.withdraw",
        "parseHeader",
        "run_all",
        "run",
        "$scope",
        "Run",
    ]
    assert named_identifiers("Where is the stock counted?") == []


def test_units_the_question_names_come_first(grounding: Grounding) -> None:
    """The named unit leads; BM25 fills the rest without repeating it."""
    positions = grounding.retrieve("What does `Stock.withdraw` do?", 4)
    assert shown(grounding, positions)[0] == ("python/inventory/stock.py", "Stock.withdraw")
    assert len(positions) == len(set(positions)) == 4


def test_a_bare_name_brings_every_unit_of_that_name(grounding: Grounding) -> None:
    positions = grounding.retrieve("Where is check_amount defined?", 4)
    assert shown(grounding, positions)[:2] == [
        ("python/inventory/legacy.py", "check_amount"),
        ("python/inventory/stock.py", "check_amount"),
    ]


def test_without_names_bm25_finds_the_code_described(grounding: Grounding) -> None:
    positions = grounding.retrieve("how is a discount applied to the cart total?", 2)
    assert set(shown(grounding, positions)) == {
        ("javascript/cart.js", "cartTotal"),
        ("javascript/cart.js", "applyDiscount"),
    }


def test_messages_are_laid_out_as_the_training_examples(
    grounding: Grounding, examples: list[Example]
) -> None:
    """Given a training example's documents and question, the turns are that example's."""
    by_place = {
        (u.path, u.qualified_name, f"{u.start_line}-{u.end_line}"): u for u in grounding.units
    }
    checked = 0
    for example in examples:
        if example.question_type != "location":
            continue
        user = example.messages[1].content
        units = [by_place[m["path"], m["name"], m["lines"]] for m in DOCUMENT.finditer(user)]
        documents = [grounding.documents.of(unit) for unit in units]
        messages = grounding.messages(documents, example.question)
        assert messages == [{"role": m.role, "content": m.content} for m in example.messages[:2]], (
            example.id
        )
        checked += 1
    assert checked >= 5


def test_documents_are_left_out_from_the_last_until_the_messages_fit(
    grounding: Grounding,
) -> None:
    question = "What does `Stock.withdraw` do?"
    whole = grounding.ground(question, 4)
    sizes = [len(document.render()) for document in whole.documents]
    fixed = len(grounding.templates.system) + len(grounding.templates.user_turn([], question))
    # Room for exactly the first two documents (and the blank line between them).
    room = fixed + sizes[0] + 2 + sizes[1]
    fitted = grounding.ground(question, 4, count_tokens=len, max_tokens=room)
    assert [d.unit.qualified_name for d in fitted.documents] == [
        d.unit.qualified_name for d in whole.documents[:2]
    ]
    assert sum(len(m["content"]) for m in fitted.messages) <= room
    # Too little room for any: the best document still goes.
    alone = grounding.ground(question, 4, count_tokens=len, max_tokens=10)
    assert [d.unit.qualified_name for d in alone.documents] == ["Stock.withdraw"]


@pytest.fixture(scope="module")
def mined_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the sample repository with the mine stage done."""
    root = tmp_path_factory.mktemp("ask")
    settings = ForgeSettings.model_validate({"runs_dir": str(root / "runs")})
    forge = Forge(settings, root / "run", registry=PluginRegistry())
    assert forge.mine(SAMPLE_REPO).status == "ran"
    return forge.run.path


def test_forge_ask_shows_the_prompt_with_the_named_code_first(mined_run: Path) -> None:
    outcome = CliRunner().invoke(
        main, ["ask", "--run-dir", str(mined_run), "--show-prompt", "What does `format_cents` do?"]
    )
    assert outcome.exit_code == 0, outcome.output
    system, user = outcome.output.split("--- user\n")
    assert load_templates().system in system
    first = next(DOCUMENT.finditer(user))
    assert (first["path"], first["name"]) == ("inventory/report.py", "format_cents")
    assert user.rstrip().endswith("What does `format_cents` do?")


def test_forge_ask_sends_the_grounded_messages_to_the_deployment(
    mined_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: dict[str, Any] = {}

    def fake_stream(
        endpoint: str, model: str, messages: list[dict[str, str]], **kw: Any
    ) -> Iterator[str]:
        sent.update(endpoint=endpoint, model=model, messages=messages, **kw)
        yield from ["It formats ", "cents."]

    deployment = DeployResult(
        target="llamacpp", endpoint="http://127.0.0.1:9/v1", model_name="forge-test"
    )
    monkeypatch.setattr("forge_core.chat.stream_chat", fake_stream)
    monkeypatch.setattr(Forge, "deployment", lambda self: deployment)
    outcome = CliRunner().invoke(
        main,
        [
            "ask",
            "--run-dir",
            str(mined_run),
            "--documents",
            "2",
            "--max-tokens",
            "64",
            "What does `format_cents` do?",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.rstrip().endswith("It formats cents.")
    assert "inventory/report.py:" in outcome.output and "format_cents" in outcome.output
    assert (sent["endpoint"], sent["model"], sent["max_tokens"]) == (
        "http://127.0.0.1:9/v1",
        "forge-test",
        64,
    )
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user"]
    assert len(list(DOCUMENT.finditer(sent["messages"][1]["content"]))) == 2


def test_a_question_matching_nothing_gets_no_documents(grounding: Grounding) -> None:
    grounded = grounding.ground("zzz qqq?", 4)
    assert grounded.documents == []
    assert grounded.messages[1]["content"] == grounding.templates.user_turn([], "zzz qqq?")


def test_forge_ask_before_mining_says_what_to_run(tmp_path: Path) -> None:
    settings = ForgeSettings.model_validate({"runs_dir": str(tmp_path / "runs")})
    run = Forge(settings, tmp_path / "run", registry=PluginRegistry()).run.path
    outcome = CliRunner().invoke(main, ["ask", "--run-dir", str(run), "What is this?"])
    assert outcome.exit_code == 2
    assert "forge mine REPO" in outcome.output

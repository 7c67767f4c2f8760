"""Grounding a question in the repository's code, and ``forge ask``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from raft_corpus import DOCUMENT, mine

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


def tool(number: int, purpose: str) -> tuple[str, str, bytes]:
    """``tools/tool{number}.py``: one ``main`` whose docstring says what it does."""
    source = (
        f'def main():\n    """Entry point of tool {number}: {purpose}."""\n    return {number}\n'
    )
    return f"tools/tool{number}.py", "python", source.encode()


#: Six files with a ``main`` each; the one asked about comes last in file order.
TOOLS = [tool(n, "print a greeting") for n in range(1, 6)] + [
    tool(6, "rotate the backup archives"),
    (
        "tools/backup.py",
        "python",
        b'def rotate_backups():\n    """Delete archives older than a week."""\n    return 0\n',
    ),
]


@pytest.fixture(scope="module")
def tools() -> Grounding:
    return Grounding(mine(TOOLS), SynthSettings().max_document_chars)


@pytest.mark.parametrize(
    "question",
    [
        "What does the function `main` in `tools/tool6.py` do?",  # the training phrasing
        "In `tools/tool6.py`, what is `main` for?",
        "What does `main` in tools/tool6.py do?",  # a bare path
        "What does main() in tools/tool6.py:1-3 do?",  # with a line reference
        "What does `main` in `tool6.py` do?",  # the ending of one path only
        "Explain `main` (defined in `./tools/tool6.py`).",
    ],
)
def test_the_unit_in_the_file_the_question_names_is_sent_first(
    tools: Grounding, question: str
) -> None:
    """Of more same-named units than documents, the one in the named file leads."""
    grounded = tools.ground(question, 4)
    sent = [(d.unit.path, d.unit.qualified_name) for d in grounded.documents]
    assert sent[0] == ("tools/tool6.py", "main")
    assert len(sent) == len(set(sent)) == 4
    assert all(name == "main" for _, name in sent)


def test_named_paths_are_whole_paths_or_an_ending_only_one_file_has() -> None:
    grounding = Grounding(
        mine([*TOOLS, ("legacy/tool6.py", "python", b"def main():\n    return 0\n")]), 1500
    )
    assert grounding.named_paths("What does `main` in `tools/tool6.py` do?") == {"tools/tool6.py"}
    assert grounding.named_paths("What do tools/tool6.py and legacy/tool6.py share?") == {
        "tools/tool6.py",
        "legacy/tool6.py",
    }
    # Two files end in `tool6.py`: that names neither; `backup.py` names one.
    assert grounding.named_paths("What does `main` in `tool6.py` do?") == set()
    assert grounding.named_paths("Is backup.py called by tool6.py?") == {"tools/backup.py"}
    # Words that are no file's path, or only part of a file name, name nothing.
    assert grounding.named_paths("Is `Stock.withdraw` in ol6.py or tools, e.g. tools/?") == set()


def test_same_named_units_are_ordered_by_bm25_not_file_order(tools: Grounding) -> None:
    """Without a path, the question's other words pick which `main` leads."""
    positions = tools.retrieve("Which `main` rotates the backup archives?", 3)
    assert shown(tools, positions)[0] == ("tools/tool6.py", "main")
    assert [tools.units[i].qualified_name for i in positions] == ["main"] * 3


def test_a_named_file_beats_a_qualified_match_which_beats_a_bare_name() -> None:
    """`run` in `jobs/worker.py` is the method there; then functions named `run`, then methods."""
    method = b"class Job:\n    def run(self):\n        return 1\n"
    files = [
        ("jobs/early.py", "python", method),
        ("jobs/plain.py", "python", b"def run():\n    return 2\n"),
        ("jobs/worker.py", "python", b"class Worker:\n    def run(self):\n        return 3\n"),
    ]
    grounding = Grounding(mine(files), 1500)
    positions = grounding.named("What does the method `run` in `jobs/worker.py` do?")
    assert shown(grounding, positions) == [
        ("jobs/worker.py", "Worker.run"),
        ("jobs/plain.py", "run"),
        ("jobs/early.py", "Job.run"),
    ]


def test_trimming_to_the_token_room_keeps_the_unit_asked_about(tools: Grounding) -> None:
    """The least relevant documents go first; the named file's unit is never the one left out."""
    question = "What does the function `main` in `tools/tool6.py` do?"
    whole = tools.ground(question, 4)
    sizes = [len(document.render()) for document in whole.documents]
    fixed = len(tools.templates.system) + len(tools.templates.user_turn([], question))
    room = fixed + sizes[0] + 2 + sizes[1]
    fitted = tools.ground(question, 4, count_tokens=len, max_tokens=room)
    assert fitted.documents == whole.documents[:2]
    assert fitted.documents[0].unit.path == "tools/tool6.py"
    alone = tools.ground(question, 4, count_tokens=len, max_tokens=10)
    assert [(d.unit.path, d.unit.qualified_name) for d in alone.documents] == [
        ("tools/tool6.py", "main")
    ]


def test_forge_ask_shows_the_unit_of_the_named_file(tmp_path: Path) -> None:
    """End to end: the prompt holds `tools/tool6.py`'s `main` first, in the training layout."""
    repo = tmp_path / "repo"
    for path, _, source in TOOLS:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(source)
    settings = ForgeSettings.model_validate({"runs_dir": str(tmp_path / "runs")})
    forge = Forge(settings, tmp_path / "run", registry=PluginRegistry())
    assert forge.mine(repo).status == "ran"
    question = "What does the function `main` in `tools/tool6.py` do?"
    outcome = CliRunner().invoke(
        main, ["ask", "--run-dir", str(forge.run.path), "--show-prompt", question]
    )
    assert outcome.exit_code == 0, outcome.output
    system, user = outcome.output.split("--- user\n")
    assert system == f"--- system\n{load_templates().system}\n"
    documents = [(m["path"], m["name"]) for m in DOCUMENT.finditer(user)]
    assert documents[0] == ("tools/tool6.py", "main")
    assert len(documents) == 1 + SynthSettings().distractors
    assert user.rstrip().endswith(question)

"""The validate stage: secrets, duplicates, grounding, balance, splits, report."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from forge_core.builtin.checks import find_secret, secret_patterns
from forge_core.config import ForgeSettings, ValidationSettings
from forge_core.contracts import ChatMessage, CodeUnit, Example, UnitKind, UnitQuality
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_core.validation import (
    ValidationContext,
    near_duplicates,
    shingle_hashes,
    shingles,
    token_counter,
    validate_examples,
)

PLANTED_SECRETS = {
    "private key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA",
    "AWS access key id": "AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLQ'",
    "AWS secret access key": "aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
    "GitLab token": "GITLAB_TOKEN = 'glpat-" + "Ab3_" * 6 + "'",
    "GitHub token": "token = ghp_" + "a1B2" * 9,
    "Slack token": "xoxb-123456789012-abcdefghijkl",
    "Google API key": "key=AIza" + "Sy" + "A" * 33,
    "Stripe secret key": "stripe.api_key = 'sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" + "'",
    "OpenAI or Anthropic API key": "OPENAI_API_KEY=sk-proj-" + "x9" * 20,
    "password in assignment": 'db_password = "hunter2-correct-horse"',
    "JSON web token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
}


def make_unit(index: int, path: str, source: str | None = None) -> CodeUnit:
    source = source or f"def func_{index}(value):\n    return value + {index}\n"
    return CodeUnit(
        id=f"{path}::func_{index}",
        path=path,
        language="python",
        kind=UnitKind.FUNCTION,
        name=f"func_{index}",
        qualified_name=f"func_{index}",
        signature=f"def func_{index}(value):",
        source=source,
        start_line=1,
        end_line=2,
        start_byte=0,
        end_byte=len(source),
        quality=UnitQuality(lines=2, has_doc=False),
    )


def make_example(
    unit: CodeUnit, *, qtype: str = "purpose", extra: str = "", answer: str | None = None
) -> Example:
    line = unit.source.splitlines()[1].strip()
    context = f'<DOCUMENT path="{unit.path}">\n{unit.source}</DOCUMENT>'
    body = answer or (
        f"The body says ##begin_quote##{line}##end_quote##, so it adds a constant.{extra}\n"
        f"<ANSWER>: {unit.name} returns its argument plus a constant."
    )
    return Example(
        id=f"{unit.id}:{qtype}:{extra[:8]}",
        question_type=qtype,
        language="python",
        path=unit.path,
        oracle_id=unit.id,
        messages=[
            ChatMessage(role="system", content="Answer from the documents."),
            ChatMessage(role="user", content=f"{context}\nWhat does {unit.name} do?"),
            ChatMessage(role="assistant", content=body),
        ],
    )


def run_validation(examples: list[Example], units: list[CodeUnit], **settings: object):  # type: ignore[no-untyped-def]
    context = ValidationContext(
        {u.id: u for u in units},
        ValidationSettings(min_tokens=1, **settings),
        lambda t: len(t) // 4,
    )
    return validate_examples(
        examples, context, PluginRegistry(entry_points=False).validation_checks()
    )


def test_every_planted_secret_is_detected_and_placeholders_are_not() -> None:
    for name, text in PLANTED_SECRETS.items():
        assert find_secret(text) == name, name
    for harmless in [
        'password = "changeme"',
        "password = os.environ['PW']",
        'api_key = "<your key>"',
        "def check_password(value):",
        'token = "${TOKEN}"',
    ]:
        assert find_secret(harmless) is None, harmless


@pytest.mark.parametrize(
    "text",
    [
        'api_key: str = "a8f5f167f44f4964e6c998dee827110c"',  # annotated assignment
        '    password: str = "Hunter2Hunter2x"',  # dataclass field
        'API_KEY: Optional[str] = "a8f5f167f44f4964"',
        'secret: dict[str, str] | None = "Zx8kLm2Qp9wT"',
        'app.secret_key = b"8f42a73054b1749f8f58848be5e6502c"',  # the Flask docs' own form
        'DB_PASSWORD = r"Hunter2Hunter2x"',
        'SECRET_KEY: Final = RB"Zx8kLm2Qp9wT"',
        'var dbPassword string = "Hunter2Hunter2x"',  # Go, typed
        'dbPassword := "Hunter2Hunter2x"',  # Go, short declaration
        'def connect(password: str = "Hunter2Hunter2x"):',  # a literal default
        "'db_password' => 'Hunter2Hunter2x',",  # PHP array, Ruby hash rocket
        '    "api_key" => "a8f5f167f44f4964",',
    ],
)
def test_literal_passwords_behind_a_type_or_a_string_prefix_are_found(text: str) -> None:
    assert find_secret(text) == "password in assignment"


@pytest.mark.parametrize(
    "text",
    [
        'def check_password(value: str = "abcdefghij"):',  # the word names the function
        'if password == "abcdefghij":',
        'if password != "abcdefghij":',
        'password_hint = get("abcdefghijk")',
        'password = f"{prefix}abcdefghij"',  # interpolated, not a literal
        'password: str = "changeme"',
        'f(password=pw, user="abcdefghij")',
        'password:\n  user: "abcdefghijk"',  # YAML: the type never spans lines
        "password_prompt = 'Enter the new password:'",  # a sentence, not a secret
    ],
)
def test_comparisons_calls_and_placeholders_are_no_password(text: str) -> None:
    assert find_secret(text) is None


def test_password_pattern_is_linear_on_long_name_runs() -> None:
    """Long runs of name characters once took quadratic time (seconds at 30k characters)."""
    patterns, _ = secret_patterns()
    (pattern,) = [p for p in patterns if p.name == "password in assignment"]
    for unit in ("password_", "a.", "password: a, ", "password str "):
        line = unit * (30_000 // len(unit))
        started = time.perf_counter()
        assert pattern.regex.search(line) is None
        assert time.perf_counter() - started < 0.5, unit


def test_planted_secrets_never_reach_any_split() -> None:
    units = [make_unit(i, f"pkg/m{i}.py") for i in range(30)]
    examples = [make_example(u) for u in units]
    for index, secret in enumerate(PLANTED_SECRETS.values()):
        examples.append(make_example(units[index], qtype="calls", extra=f" Config: {secret}"))
    splits, report = run_validation(examples, units, max_type_share=1.0)
    everything = json.dumps([e.model_dump() for items in splits.values() for e in items])
    for secret in PLANTED_SECRETS.values():
        assert secret.splitlines()[0] not in everything
    assert sum(n for r, n in report.rejected.items() if r.startswith("secret:")) == len(
        PLANTED_SECRETS
    )


def test_planted_duplicates_appear_once() -> None:
    units = [make_unit(i, f"pkg/m{i}.py") for i in range(20)]
    examples = [make_example(u) for u in units]
    exact = make_example(units[3])
    exact.id = "copy"
    story = " ".join(f"step {n} adds the value to the running total and logs it" for n in range(12))
    long_answer = examples[5].messages[-1].content.replace("constant.", f"constant. {story}.")
    examples[5].messages[-1].content = long_answer
    near = make_example(units[5], answer=long_answer.replace("step 7 adds", "step 7 puts"))
    near.id = "near"
    splits, report = run_validation([*examples, exact, near], units)
    kept = [e for items in splits.values() for e in items]
    assert len(kept) == 20
    assert report.rejected["exact duplicate"] == 1 and report.rejected["near duplicate"] == 1


def test_duplicates_are_judged_on_question_and_answer_not_the_shared_context() -> None:
    # RAFT-style: one long context (oracle + distractors) for several questions about a unit.
    units = [make_unit(i, "pkg/big.py") for i in range(40)]
    context = "\n".join(f'<DOCUMENT path="{u.path}">\n{u.source}</DOCUMENT>' for u in units)
    questions = {
        "purpose": ("What does func_0 do?", "It adds a constant to its argument."),
        "callers": ("Which documents call func_0?", "None of the documents shown calls it."),
        "location": ("Where is func_0 defined?", "In pkg/big.py, lines 1-2."),
    }

    def example(qtype: str, question: str, answer: str, *, with_question: bool) -> Example:
        made = make_example(units[0], qtype=qtype, answer=f"{answer}\n<ANSWER>: {answer}")
        made.messages[1].content = f"{context}\nQuestion: {question}"
        made.question = f"Question: {question}" if with_question else ""
        return made

    distinct = [example(t, q, a, with_question=True) for t, (q, a) in questions.items()]
    splits, report = run_validation(distinct, units, max_type_share=1.0)
    assert sum(len(items) for items in splits.values()) == 3
    assert "near duplicate" not in report.rejected
    # Without `question` the whole user turn is compared: the shared context dominates.
    whole_turn = [example(t, q, a, with_question=False) for t, (q, a) in questions.items()]
    _, report = run_validation(whole_turn, units, max_type_share=1.0)
    assert report.rejected["near duplicate"] >= 1
    # The same question and answer shown with other documents is an exact duplicate.
    again = example("purpose", *questions["purpose"], with_question=True)
    again.id = "again"
    again.messages[1].content = f"{units[5].source}\nQuestion: What does func_0 do?"
    _, report = run_validation([*distinct, again], units, max_type_share=1.0)
    assert report.rejected["exact duplicate"] == 1


def test_near_duplicate_candidates_below_the_threshold_are_kept() -> None:
    # 40 pairs whose answers share 69% of their word 5-grams: LSH proposes some of them as
    # candidates at threshold 0.85; only an estimated similarity over the threshold drops one.
    rng = random.Random(0)
    unit = make_unit(1, "a.py")
    examples = []
    for pair in range(40):
        words = [f"w{rng.randrange(5000)}" for _ in range(120)]
        changed = [f"x{n}" if n % 24 == 0 else word for n, word in enumerate(words)]
        first, second = " ".join(words), " ".join(changed)
        a, b = shingles(first), shingles(second)
        assert len(a & b) / len(a | b) < 0.7
        for index, answer in enumerate((first, second)):
            example = make_example(unit, answer=answer)
            example.question = f"Question {pair}.{index}?"
            examples.append(example)
    assert near_duplicates(examples, 0.85) == set()
    copy = make_example(unit, answer=examples[0].messages[-1].content)
    copy.question = "Question 0.0?"
    assert near_duplicates([*examples, copy], 0.85) == {len(examples)}


def test_quote_not_in_oracle_is_rejected() -> None:
    unit = make_unit(1, "a.py")
    bad = make_example(
        unit, answer="##begin_quote##return value * 99##end_quote##\n<ANSWER>: it multiplies"
    )
    _, report = run_validation([bad], [unit])
    assert report.rejected == {"grounding: a quote is not verbatim in the oracle": 1}


@pytest.mark.parametrize("split_by", ["file", "random"])
def test_no_test_unit_is_an_oracle_in_train(split_by: str) -> None:
    units = [make_unit(i, f"pkg/m{i % 10}.py") for i in range(40)]
    examples = [make_example(u, qtype=t) for u in units for t in ("purpose", "calls")]
    splits, _ = run_validation(examples, units, split_by=split_by, max_type_share=1.0)
    test_oracles = {e.oracle_id for e in splits["test"]}
    assert test_oracles and not test_oracles & {e.oracle_id for e in splits["train"]}
    if split_by == "file":
        assert not {e.path for e in splits["test"]} & {e.path for e in splits["train"]}


def test_splits_stay_put_when_files_are_added() -> None:
    # A retrained model is judged against the deployed one on its own test split: that
    # split must not be full of files the deployed model trained on. Adding 5 files to
    # 100 may move a few files across the edges of the splits, never reshuffle them.
    def file_splits(count: int, extra: int = 0) -> dict[str, str]:
        paths = [f"pkg/m{i}.py" for i in range(count)] + [f"new/n{i}.py" for i in range(extra)]
        units = [make_unit(i, path) for i, path in enumerate(paths)]
        examples = [make_example(u) for u in units]
        splits, _ = run_validation(examples, units, test_fraction=0.2, valid_fraction=0.1)
        return {e.path: name for name, items in splits.items() for e in items}

    before, after = file_splits(100), file_splits(100, extra=5)
    assert sum(split == "test" for split in before.values()) == 20
    moved = [path for path, split in before.items() if after[path] != split]
    was_train_now_test = [p for p in moved if before[p] == "train" and after[p] == "test"]
    assert len(moved) <= 5 and not was_train_now_test, moved
    assert file_splits(100) == before  # and the same input gives the same splits


def test_over_represented_type_is_capped() -> None:
    units = [make_unit(i, f"pkg/m{i}.py") for i in range(40)]
    examples = [make_example(u, qtype="purpose") for u in units[:30]]
    examples += [make_example(u, qtype="calls") for u in units[30:]]
    splits, report = run_validation(examples, units, max_type_share=0.5)
    kept = [e for items in splits.values() for e in items]
    assert sum(e.question_type == "purpose" for e in kept) == 10
    assert report.question_types_before["purpose"] == 30


def test_stage_writes_splits_report_and_histogram(
    toy_settings: ForgeSettings, toy_registry: PluginRegistry, toy_repo: Path, tmp_path: Path
) -> None:
    (toy_repo / "pkg0" / "mod0.toy").write_text("def secret_key='Zx8kLm2Qp9wT'\n")
    forge = Forge(toy_settings, tmp_path / "run", registry=toy_registry)
    forge.mine(toy_repo)
    forge.synth()
    outcome = forge.validate()
    report = json.loads((forge.run.path / "validate" / "report.json").read_text())
    assert report["rejected"] == {"secret: password in assignment": 1}
    assert report["kept"] == 15 and sum(report["splits"].values()) == 15
    everything = "".join(
        (forge.run.path / "validate" / f"{n}.jsonl").read_text() for n in ("train", "valid", "test")
    )
    assert "Zx8kLm2Qp9wT" not in everything
    png = forge.run.path / "validate" / "scores.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outcome.manifest is not None and "validate/scores.png" in outcome.manifest.outputs


def test_every_secret_match_holds_one_of_its_patterns_hints() -> None:
    """The hints skip the regex search: they must be in every match, whatever its case."""
    patterns, _ = secret_patterns()
    for pattern in patterns:
        text = PLANTED_SECRETS[pattern.name]
        shouting = text.upper() if "(?i)" in pattern.regex.pattern else text
        for sample in (text, shouting, f"x = 1\n{text}\n"):
            matches = [m.group(0) for m in pattern.regex.finditer(sample)]
            assert matches, (pattern.name, sample)
            for match in matches:
                assert any(hint in match.casefold() for hint in pattern.hints), match


def test_shingle_hashes_are_datasketchs_own() -> None:
    from datasketch.hashfunc import sha1_hash32

    texts = ["return the value", "ünïcödé shingle", "", "x" * 300]
    assert shingle_hashes(texts) == [sha1_hash32(t.encode("utf-8")) for t in texts]


def test_primed_token_counts_equal_one_by_one_counts() -> None:
    tokenizer_file = (
        Path(__file__).parents[2] / "plugins/forge_tinycoder/forge_tinycoder/model/tokenizer.json"
    )
    if not tokenizer_file.is_file():
        pytest.skip("the tinycoder tokenizer is not in this checkout")
    texts = ["def f(x):\n    return x", "Answer from the documents.", "ünï " * 50]
    primed, _ = token_counter(tokenizer_file)
    primed.prime([*texts, texts[0]])
    fresh, name = token_counter(tokenizer_file)
    assert name == str(tokenizer_file)
    assert [primed(t) for t in texts] == [fresh(t) for t in texts]
    assert all(count > 1 for count in map(fresh, texts))
    estimate, name = token_counter(None)
    assert name.startswith("estimate") and estimate("abcdefgh") == 2

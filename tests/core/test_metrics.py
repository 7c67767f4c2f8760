"""The built-in metrics on hand-made samples with known answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from forge_core.builtin.metrics import (
    named_identifiers,
    normalise_answer,
    repository_symbols,
)
from forge_core.contracts import (
    ChatMessage,
    CodeUnit,
    EvalSample,
    EvaluateRequest,
    EvaluateResult,
    UnitKind,
    UnitQuality,
)
from forge_core.plugins import PluginRegistry


def sample(
    sample_id: str,
    prediction: str = "",
    reference: str = "",
    *,
    context: str = "",
    question_type: str = "purpose",
    language: str = "python",
    logprobs: list[float] | None = None,
) -> EvalSample:
    return EvalSample(
        id=sample_id,
        question_type=question_type,
        language=language,
        context=context,
        reference=reference,
        prediction=prediction,
        token_logprobs=logprobs,
    )


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry(entry_points=False)


def evaluate(
    registry: PluginRegistry, metric: str, samples: list[EvalSample], symbols: Sequence[str] = ()
) -> EvaluateResult:
    request = EvaluateRequest(metric=metric, samples=samples, symbols=list(symbols))
    return EvaluateResult.model_validate(registry.call("evaluate", metric, request))


def test_the_builtin_plugin_provides_the_light_metrics(registry: PluginRegistry) -> None:
    info = registry.info("builtin-metrics")
    assert info.status == "loaded" and info.origin == "builtin"
    for metric in ("perplexity", "exact_match", "hallucination", "quote_fidelity"):
        assert registry.find("evaluate", metric) == "builtin-metrics"


# --------------------------------------------------------------------------- perplexity


def test_perplexity_pools_every_reference_token(registry: PluginRegistry) -> None:
    samples = [
        sample("a", logprobs=[-1.0, -1.0], language="python"),
        sample("b", logprobs=[-3.0], language="go"),
        sample("c", logprobs=None, language="go"),
    ]
    result = evaluate(registry, "perplexity", samples)
    assert result.higher_is_better is False
    assert result.value == pytest.approx(math.exp(5 / 3))
    assert result.per_sample == [pytest.approx(math.e), pytest.approx(math.exp(3)), None]
    assert result.details["tokens"] == 3
    assert result.details["by_language"] == {
        "go": pytest.approx(math.exp(3)),
        "python": pytest.approx(math.e),
    }
    assert result.details["counts"]["by_language"] == {"go": 1, "python": 1}


def test_perplexity_is_none_without_log_probs(registry: PluginRegistry) -> None:
    result = evaluate(registry, "perplexity", [sample("a"), sample("b", logprobs=[])])
    assert result.value is None and result.per_sample == [None, None]
    assert result.details["by_question_type"] == {"purpose": None}


# --------------------------------------------------------------------------- exact match


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reasoning\n<ANSWER>: `parse_config`", "parse_config"),
        # The first answer line starts the answer, as RAFT writes it; a later mark is text.
        (
            '<ANSWER>: first\nmore\n<ANSWER>:  "Deque.append".',
            'first more <ANSWER>: "Deque.append"',
        ),
        ("no answer mark,   just   text.", "no answer mark, just text"),
        ("<ANSWER>: ```python\ndef f(x):\n    return x\n```", "def f(x): return x"),
        ("<ANSWER>: ```f(a, b)```", "f(a, b)"),
        ("<ANSWER>: 'it returns None'!", "it returns None"),
        ("<ANSWER>: `return total;`", "return total"),
    ],
)
def test_normalise_answer(text: str, expected: str) -> None:
    assert normalise_answer(text) == expected


def test_exact_match_is_case_sensitive_and_broken_down(registry: PluginRegistry) -> None:
    samples = [
        sample("a", "I think\n<ANSWER>: `load`.", "Because\n<ANSWER>: load", question_type="name"),
        sample("b", "<ANSWER>: Load", "<ANSWER>: load", question_type="name"),
        sample("c", "<ANSWER>: x  +  1", "<ANSWER>: x + 1", question_type="body", language="go"),
    ]
    result = evaluate(registry, "exact_match", samples)
    assert result.per_sample == [1.0, 0.0, 1.0]
    assert result.value == pytest.approx(2 / 3) and result.higher_is_better
    assert result.details["matches"] == 2
    assert result.details["by_question_type"] == {"body": 1.0, "name": 0.5}
    assert result.details["by_language"] == {"go": 1.0, "python": 0.5}


# --------------------------------------------------------------------------- hallucination

CONTEXT = """## store/users.py :: UserStore.get_user
def get_user(self, user_id):
    return normalise_email(self.rows[user_id])

Question: How do I load a user?"""
SYMBOLS = ["UserStore", "UserStore.get_user", "(*Server).Serve"]


def test_named_identifiers_follow_the_definition() -> None:
    text = (
        "Call `UserStore` then store.get_user(1) and fetch_all() or parseConfig; see "
        "store/users.py, users.py, e.g. https://example.com/some_path. The `config` value "
        "holds data and the result(s)."
    )
    found = named_identifiers(text)
    assert {"UserStore", "store.get_user", "fetch_all", "parseConfig", "config"} <= set(found)
    assert not {"store", "some_path", "data", "result", "holds"} & set(found)
    assert "example.com" not in found


def test_hallucination_catches_a_phantom_api(registry: PluginRegistry) -> None:
    samples = [
        # planted phantom: nothing in the repo or the context is called fetch_user_by_email
        sample(
            "phantom",
            "Use `UserStore.fetch_user_by_email(email)`.\n<ANSWER>: fetch_user_by_email",
            context=CONTEXT,
        ),
        # a real symbol (qualified and bare), a context-only name, builtins and stdlib
        sample(
            "real",
            "`UserStore.get_user` calls normalise_email(); then len(rows) and "
            "json.dumps(user), self.rows.items() (see users.py).\n<ANSWER>: `get_user`",
            context=CONTEXT,
        ),
        # code the answer defines itself, and a Go method by its qualified name
        sample(
            "own-code",
            "```python\ndef pick_first(users_list):\n    first_user = users_list[0]\n"
            "    return first_user\n```\n`(*Server).Serve` serves; call pick_first(x).",
            context=CONTEXT,
            question_type="usage",
            language="go",
        ),
    ]
    result = evaluate(registry, "hallucination", samples, SYMBOLS)
    assert result.higher_is_better is False
    assert result.per_sample == [1.0, 0.0, 0.0]
    assert result.value == pytest.approx(1 / 3)
    assert result.details["phantoms"] == {
        "phantom": ["UserStore.fetch_user_by_email", "fetch_user_by_email"]
    }
    assert result.details["most_common"][0] == ["UserStore.fetch_user_by_email", 1]
    assert result.details["by_question_type"] == {"purpose": 0.5, "usage": 0.0}


def test_a_name_known_only_from_the_context_is_not_a_phantom(registry: PluginRegistry) -> None:
    answer = "It calls normalise_email() on the row."
    with_context = evaluate(registry, "hallucination", [sample("a", answer, context=CONTEXT)])
    without = evaluate(registry, "hallucination", [sample("a", answer, context="")])
    assert with_context.value == 0.0
    assert without.value == 1.0 and without.details["phantoms"] == {"a": ["normalise_email"]}


def test_repository_symbols_include_modules_references_and_code_names() -> None:
    unit = CodeUnit(
        path="store/users.py",
        language="python",
        kind=UnitKind.METHOD,
        name="get_user",
        qualified_name="UserStore.get_user",
        signature="def get_user(self, user_id):",
        source="def get_user(self, user_id): return self.rows[user_id]",
        start_line=1,
        end_line=1,
        start_byte=0,
        end_byte=10,
        references=["normalise_email"],
        quality=UnitQuality(lines=1, has_doc=False),
    )
    symbols = repository_symbols([unit])
    assert {"get_user", "UserStore.get_user", "store.users", "users", "store"} <= set(symbols)
    assert {"normalise_email", "rows", "user_id"} <= set(symbols)
    assert "rows" not in repository_symbols([unit], code_names=False)


# --------------------------------------------------------------------------- quote fidelity


def test_quote_fidelity_counts_spans_not_in_the_context(registry: PluginRegistry) -> None:
    samples = [
        sample(
            "a",
            "It says ##begin_quote##return normalise_email(self.rows[user_id])##end_quote## and "
            "##begin_quote##def get_user(self, user_id, strict):##end_quote##.",
            context=CONTEXT,
        ),
        sample("b", "##begin_quote##def get_user(self, user_id):##end_quote##", context=CONTEXT),
        sample("c", "No quotes here.", context=CONTEXT, language="go"),
    ]
    result = evaluate(registry, "quote_fidelity", samples)
    assert result.higher_is_better
    assert result.value == pytest.approx(2 / 3)
    assert result.per_sample == [0.5, 1.0, None]
    details = result.details
    assert (details["quotes"], details["verbatim"], details["unfaithful"]) == (3, 2, 1)
    assert details["unfaithful_share"] == pytest.approx(1 / 3)
    assert details["unfaithful_quotes"] == {"a": ["def get_user(self, user_id, strict):"]}
    assert details["by_language"] == {"go": None, "python": pytest.approx(2 / 3)}


def test_quote_fidelity_is_none_without_quotes(registry: PluginRegistry) -> None:
    result = evaluate(registry, "quote_fidelity", [sample("a", "plain answer")])
    assert result.value is None and result.details["unfaithful_share"] is None


def test_the_prompt_counts_as_context(registry: PluginRegistry) -> None:
    item = sample("a", "It uses normalise_email().")
    item.prompt = [ChatMessage(role="user", content=CONTEXT)]
    assert evaluate(registry, "hallucination", [item]).value == 0.0

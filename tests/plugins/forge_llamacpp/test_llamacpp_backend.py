"""The llamacpp model backend: generate and score on the bigram GGUF (exact expectations)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from llamacpp_gguf import HIDDEN

from forge_core.backends import ModelBackend
from forge_core.contracts import ChatMessage

#: The logit of the bigram table's choice: RMSNorm scales a one-hot vector to sqrt(hidden).
CHOSEN = math.sqrt(HIDDEN)


@pytest.fixture(scope="module")
def backend(tiny_gguf: Path) -> Iterator[ModelBackend]:
    from forge_core.plugins import PluginRegistry

    spec = PluginRegistry().model_backends()["llamacpp"]
    assert spec.formats == ("gguf",)
    loaded = spec.load(str(tiny_gguf), None, {"n_ctx": 256})
    try:
        yield loaded
    finally:
        loaded.close()


def _chat(*turns: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in turns]  # type: ignore[arg-type]


def test_it_is_a_model_backend(backend: ModelBackend) -> None:
    assert isinstance(backend, ModelBackend)


def test_generate_is_greedy_and_stops_at_the_end_of_turn(backend: ModelBackend) -> None:
    conversations = [_chat(("user", "Say hi.")), _chat(("system", "S"), ("user", "Again?"))]
    assert backend.generate(conversations, max_new_tokens=16, temperature=0.0) == ["hi", "hi"]
    assert backend.generate(conversations[:1], max_new_tokens=1) == ["h"]


def test_score_gives_one_log_prob_per_answer_token(backend: ModelBackend) -> None:
    right = _chat(("user", "Say hi."), ("assistant", "hi"))
    wrong = _chat(("user", "Say hi."), ("assistant", "ho"))
    scored = backend.score([right, wrong])
    # the answer "hi" and its end-of-turn tokens: "h", "i", "<|end|>", "\n"
    assert [len(s) for s in scored] == [4, 4]
    assert all(-1e-3 < value <= 0 for value in scored[0])
    assert scored[1][0] > -1e-3  # "h" is what the model predicts
    assert scored[1][1] == pytest.approx(-CHOSEN, abs=0.05)  # "o" is not
    assert scored[1][2] > -1e-3  # after "o", the table ends the turn: <|end|> is expected


def test_score_needs_the_assistant_last(backend: ModelBackend) -> None:
    with pytest.raises(ValueError, match="end with the assistant"):
        backend.score([_chat(("user", "no answer"))])


def test_adapters_are_refused(tiny_gguf: Path) -> None:
    from forge_llamacpp.backend import load_llamacpp_backend

    with pytest.raises(ValueError, match="merged GGUF"):
        load_llamacpp_backend(str(tiny_gguf), "some/adapter", {})

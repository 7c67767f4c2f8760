"""What the served and the evaluated model are told: the GGUF's own template, no added BOS,
and the system prompt the model was trained with (recorded for clients to send).

The GGUF here carries the exact plain ChatML template and a vocabulary that asks for a
BOS token: left to guess, llama-cpp-python swaps that template for its built-in ChatML
formatter, which adds an empty system turn and a BOS token the model never saw in training.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE
from llamacpp_gguf import write_tiny_gguf
from llamacpp_helpers import deploy_request, record_deployment

from forge_core.contracts import ChatMessage, DeployResult

SYSTEM = "You answer questions about the Forge repository."
#: What the GGUF's template makes of each conversation (training tokenises it without BOS).
RENDERED = [
    (
        [{"role": "user", "content": "Q"}],
        "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n",
    ),
    (
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n",
    ),
]


@pytest.fixture(scope="module")
def chatml_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("chatml")
    return write_tiny_gguf(folder / "chatml.gguf", template=CHATML_CHAT_TEMPLATE, add_bos=True)


def _token_count(gguf: Path, text: str) -> int:
    """How many tokens ``text`` is, without BOS (as training tokenises it)."""
    from llama_cpp import Llama

    vocabulary = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        return len(vocabulary.tokenize(text.encode(), add_bos=False, special=True))
    finally:
        vocabulary.close()


@pytest.fixture(scope="module")
def served_chatml(
    chatml_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, DeployResult]]:
    """The ChatML GGUF deployed with a system prompt, as the pipeline passes it; stopped after."""
    from forge_llamacpp.deploy import deploy_llamacpp
    from forge_llamacpp.server import stop_server

    run = tmp_path_factory.mktemp("runs") / "20250101-000000"
    result = deploy_llamacpp(deploy_request(chatml_gguf, run, system_prompt=SYSTEM))
    try:
        record_deployment(run, result)
        yield run, result
    finally:
        stop_server(run / "deploy")


def test_the_server_is_told_to_use_the_gguf_template(
    served_chatml: tuple[Path, DeployResult],
) -> None:
    _, result = served_chatml
    assert result.details["chat_format"] == "chat_template.default"


@pytest.mark.parametrize(("messages", "rendered"), RENDERED, ids=["user", "system-user"])
def test_the_server_prompts_with_the_gguf_template_and_no_bos(
    served_chatml: tuple[Path, DeployResult],
    chatml_gguf: Path,
    messages: list[dict[str, str]],
    rendered: str,
) -> None:
    from openai import OpenAI

    _, result = served_chatml
    client = OpenAI(base_url=result.endpoint, api_key="unused")
    answer = client.chat.completions.create(
        model=result.model_name,
        messages=messages,  # type: ignore[arg-type]
        max_tokens=1,
        temperature=0,
    )
    # the built-in ChatML formatter would add BOS (1 token) and, without a system
    # message, an empty system turn
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == _token_count(chatml_gguf, rendered)


def test_the_deploy_records_the_system_prompt(served_chatml: tuple[Path, DeployResult]) -> None:
    run, result = served_chatml
    assert result.details["system_prompt"] == SYSTEM
    stored = DeployResult.model_validate_json((run / "deploy" / "deployment.json").read_text())
    assert stored.details["system_prompt"] == SYSTEM


def test_the_backend_generates_from_the_gguf_template_without_bos(
    chatml_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forge_llamacpp.backend import load_llamacpp_backend

    backend = load_llamacpp_backend(str(chatml_gguf), None, {"n_ctx": 256})
    try:
        assert backend.llm.chat_format == "chat_template.default"
        tokenize = backend.llm.tokenize
        prompts: list[tuple[str, bool]] = []

        def spy(text: bytes, add_bos: bool = True, special: bool = False) -> Any:
            prompts.append((text.decode(), add_bos))
            return tokenize(text, add_bos=add_bos, special=special)

        monkeypatch.setattr(backend.llm, "tokenize", spy)
        for messages, rendered in RENDERED:
            prompts.clear()
            conversation = [ChatMessage.model_validate(message) for message in messages]
            backend.generate([conversation], max_new_tokens=1)
            assert prompts[0] == (rendered, False)
    finally:
        backend.close()

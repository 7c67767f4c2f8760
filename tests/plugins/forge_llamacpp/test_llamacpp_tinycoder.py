"""The real product: forge_tinycoder exported by forge_gguf, served and evaluated with llama.cpp.

Slow (an export, about 10 s); skipped when forge-gguf or forge-tinycoder is not installed.
F16, not Q8_0: on CPUs that advertise AMX without running it, llama.cpp's repacked Q8_0
kernels die of SIGILL (the deploy explains that; see test_sigill_is_explained).
"""

from __future__ import annotations

from importlib import resources, util
from pathlib import Path

import pytest
from llamacpp_helpers import deploy_request

from forge_core.contracts import ChatMessage, ExportRequest, ExportResult
from forge_core.plugins import PluginRegistry

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        util.find_spec("forge_gguf") is None or util.find_spec("forge_tinycoder") is None,
        reason="needs forge-gguf and forge-tinycoder installed",
    ),
]


@pytest.fixture(scope="module")
def tinycoder_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    request = ExportRequest(
        base_model=str(resources.files("forge_tinycoder").joinpath("model")),
        output_dir=str(folder),
        settings={"quantizations": ["F16"], "fidelity_positions": 16},
    )
    result = ExportResult.model_validate(PluginRegistry().call("export", "gguf", request))
    return Path(result.artifacts[0].path)


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry()


def test_tinycoder_is_served_and_answers(
    tinycoder_gguf: Path, registry: PluginRegistry, tmp_path: Path
) -> None:
    from openai import OpenAI

    from forge_core.contracts import DeployResult
    from forge_llamacpp.server import stop_server

    run = tmp_path / "run"
    raw = registry.call("deploy", "llamacpp", deploy_request(tinycoder_gguf, run))
    result = DeployResult.model_validate(raw)
    try:
        client = OpenAI(base_url=result.endpoint, api_key="unused")
        answer = client.chat.completions.create(
            model=result.model_name,
            messages=[{"role": "user", "content": "What does `add` return?"}],
            max_tokens=24,
            temperature=0,
        )
        choice = answer.choices[0]
        assert isinstance(choice.message.content, str)
        assert "<|end|>" not in choice.message.content  # the end of turn is not text
        assert choice.finish_reason in ("stop", "length")
    finally:
        stop_server(run / "deploy")


def test_tinycoder_backend_scores_the_answer_and_its_end_of_turn(
    tinycoder_gguf: Path, registry: PluginRegistry
) -> None:
    backend = registry.model_backends()["llamacpp"].load(str(tinycoder_gguf), None, {})
    try:
        conversation = [
            ChatMessage(role="user", content="What does `add` return?"),
            ChatMessage(role="assistant", content="The sum."),
        ]
        ids, prompt_length = backend.tokens_to_score(conversation)  # type: ignore[attr-defined]
        answer = b"".join(backend.llm.detokenize([i], special=True) for i in ids[prompt_length:])  # type: ignore[attr-defined]
        assert answer == b"The sum.<|end|>\n"
        scores = backend.score([conversation])[0]
        assert len(scores) == len(ids) - prompt_length
        assert all(value <= 0 for value in scores)
    finally:
        backend.close()

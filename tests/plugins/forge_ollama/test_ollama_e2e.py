"""End to end against a real Ollama: runs when OLLAMA_HOST answers, skipped otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from forge_core.contracts import DeployRequest, ExportArtifact
from forge_ollama.client import Ollama, resolve_host
from forge_ollama.deploy import deploy_to_ollama


def _ollama_version() -> str | None:
    try:
        response = httpx.get(f"{resolve_host()}/api/version", timeout=2.0)
        return str(response.json()["version"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        _ollama_version() is None,
        reason=f"no Ollama answers GET {resolve_host()}/api/version "
        f"(OLLAMA_HOST={os.environ.get('OLLAMA_HOST', 'unset')}); start one with `ollama serve`",
    ),
]


def test_deploy_chat_and_remove_on_a_real_ollama(tiny_gguf: Path, tmp_path: Path) -> None:
    from openai import OpenAI

    request = DeployRequest(
        artifact=ExportArtifact(path=str(tiny_gguf), quantization="F32"),
        model_name="e2e-test",
        output_dir=str(tmp_path / "deploy"),
        settings={"system_prompt": "Answer briefly."},
    )
    result = deploy_to_ollama(request)
    try:
        client = OpenAI(base_url=result.endpoint, api_key="ollama")
        answer = client.chat.completions.create(
            model=result.model_name,
            messages=[{"role": "user", "content": "Say hi."}],
            max_tokens=8,
            temperature=0,
        )
        # the bigram model answers "hi" and stops at its end-of-turn token
        assert answer.choices[0].message.content == "hi"
        assert answer.choices[0].finish_reason == "stop"
    finally:
        Ollama().remove(result.model_name)

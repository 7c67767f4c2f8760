"""The ollama deploy target against a fake Ollama speaking the real REST API over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ollama_helpers import gguf_helper

from forge_core.contracts import DeployRequest, DeployResult, ExportArtifact
from forge_ollama.client import OllamaError, OllamaUnavailable, resolve_host
from forge_ollama.deploy import deploy_to_ollama
from forge_ollama.modelfile import model_name
from forge_ollama.template import render_jinja

SYSTEM = "You answer questions about the repository from the documents given."


def request_for(gguf: Path, folder: Path, **settings: Any) -> DeployRequest:
    """A deploy request as the pipeline builds it (settings: the deploy section)."""
    base = {"target": "ollama", "system_prompt": SYSTEM}
    return DeployRequest(
        artifact=ExportArtifact(path=str(gguf), quantization="F32"),
        model_name="run-2025",
        output_dir=str(folder),
        settings={**base, **settings},
    )


def test_deploy_creates_the_model_and_verifies_it(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    host, state = fake_ollama
    result = deploy_to_ollama(request_for(tiny_gguf, tmp_path / "deploy"))

    assert result.target == "ollama"
    assert result.model_name == "forge-run-2025"
    assert result.endpoint == f"{host}/v1"
    assert result.pid is None
    created = state.models["forge-run-2025:latest"]["request"]
    assert created["files"] == {"model.gguf": result.details["digest"]}
    assert created["parameters"]["stop"] == ["<|end|>"]
    assert created["system"] == SYSTEM
    assert "adapters" not in created
    assert result.details["verify_reply"] == "ready"
    # the verify chat was rendered by Ollama's rules and equals the GGUF's template
    question = [{"role": "system", "content": SYSTEM}, *_verify_messages()]
    expected = render_jinja(gguf_helper.TEMPLATE, question, add_generation_prompt=True)
    assert state.prompts == [expected]


def _verify_messages() -> list[dict[str, str]]:
    from forge_ollama.client import VERIFY_MESSAGES

    return [dict(m) for m in VERIFY_MESSAGES]


def test_the_modelfile_is_written_for_a_manual_create(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "deploy"
    result = deploy_to_ollama(request_for(tiny_gguf, folder, n_ctx=512))
    text = (folder / "Modelfile").read_text()
    assert "FROM ./model.gguf\n" in text
    assert (folder / "model.gguf").resolve() == tiny_gguf.resolve()
    assert f'TEMPLATE """{result.details["template"]}"""' in text
    assert 'PARAMETER stop "<|end|>"' in text
    assert "PARAMETER num_ctx 512" in text
    assert f'SYSTEM """{SYSTEM}"""' in text
    assert "ADAPTER" not in text
    assert result.details["modelfile"] == str(folder / "Modelfile")


def test_a_blob_already_on_the_server_is_not_uploaded_again(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    _, state = fake_ollama
    first = deploy_to_ollama(request_for(tiny_gguf, tmp_path / "a"))
    second = deploy_to_ollama(request_for(tiny_gguf, tmp_path / "b"))
    assert (first.details["uploaded"], second.details["uploaded"]) == (True, False)
    assert state.uploads == 1
    assert ("HEAD", f"/api/blobs/{first.details['digest']}") in state.requests


def test_unreachable_ollama_names_ollama_host_and_the_modelfile(
    tiny_gguf: Path, tmp_path: Path, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port}")
    with pytest.raises(OllamaUnavailable) as caught:
        deploy_to_ollama(request_for(tiny_gguf, tmp_path / "deploy"))
    message = str(caught.value)
    assert f"http://127.0.0.1:{free_port}" in message
    assert "OLLAMA_HOST" in message and "ollama serve" in message
    assert "ollama create forge-run-2025 -f" in message
    assert (tmp_path / "deploy" / "Modelfile").is_file()


def test_a_model_that_cannot_answer_is_removed(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    _, state = fake_ollama
    state.fail_chat = True
    with pytest.raises(OllamaError, match="runner process has terminated"):
        deploy_to_ollama(request_for(tiny_gguf, tmp_path / "deploy"))
    assert state.models == {}


def test_a_manual_template_is_used_as_given(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    _, state = fake_ollama
    manual = "{{ range .Messages }}{{ .Content }}{{ end }}"
    result = deploy_to_ollama(request_for(tiny_gguf, tmp_path / "d", ollama_template=manual))
    assert state.models["forge-run-2025:latest"]["request"]["template"] == manual
    assert result.details["template"] == manual


def test_a_gguf_without_chat_template_is_a_clear_error(
    fake_ollama: tuple[str, Any], tmp_path: Path
) -> None:
    bare = gguf_helper.write_tiny_gguf(tmp_path / "bare.gguf", template=None)
    with pytest.raises(OllamaError, match=r"no chat template.*deploy\.ollama_template"):
        deploy_to_ollama(request_for(bare, tmp_path / "deploy"))


def test_a_missing_gguf_is_a_clear_error(fake_ollama: tuple[str, Any], tmp_path: Path) -> None:
    with pytest.raises(OllamaError, match="does not exist; run `forge export`"):
        deploy_to_ollama(request_for(tmp_path / "nope.gguf", tmp_path / "deploy"))


def test_the_plugin_is_found_by_name_and_returns_a_deploy_result(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    from forge_core.plugins import PluginRegistry

    registry = PluginRegistry()
    raw = registry.call("deploy", "ollama", request_for(tiny_gguf, tmp_path / "deploy"))
    result = DeployResult.model_validate(raw)
    assert DeployResult.model_validate_json(result.model_dump_json()) == result


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("run-2025", "forge-run-2025"),
        ("forge-My Run/1", "forge-my-run-1"),
        ("Forge-x", "forge-x"),
    ],
)
def test_model_names_are_ollama_safe_and_prefixed(given: str, expected: str) -> None:
    assert model_name(given) == expected


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("https://ollama.example.com", "https://ollama.example.com:443"),
        ("http://[::1]:9999/", "http://[::1]:9999"),
    ],
)
def test_hosts_are_normalised_like_ollama_does(configured: str, expected: str) -> None:
    assert resolve_host(configured) == expected

"""``forge ollama list|rm`` through the forge CLI, against the fake Ollama."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from forge_core.cli import main
from forge_core.contracts import DeployRequest, ExportArtifact
from forge_ollama.deploy import deploy_to_ollama


def _deploy(gguf: Path, folder: Path, name: str) -> None:
    request = DeployRequest(
        artifact=ExportArtifact(path=str(gguf), quantization="F32"),
        model_name=name,
        output_dir=str(folder),
        settings={"verify": False},
    )
    deploy_to_ollama(request)


def test_list_shows_only_forge_models(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    _, state = fake_ollama
    _deploy(tiny_gguf, tmp_path / "a", "alpha")
    state.models["llama3:latest"] = dict(state.models["forge-alpha:latest"])
    result = CliRunner().invoke(main, ["ollama", "list"])
    assert result.exit_code == 0, result.output
    assert "forge-alpha:latest" in result.output
    assert "llama3" not in result.output
    everything = CliRunner().invoke(main, ["ollama", "list", "--all"])
    assert "llama3:latest" in everything.output


def test_rm_removes_forge_models_and_refuses_others(
    fake_ollama: tuple[str, Any], tiny_gguf: Path, tmp_path: Path
) -> None:
    _, state = fake_ollama
    _deploy(tiny_gguf, tmp_path / "a", "alpha")
    _deploy(tiny_gguf, tmp_path / "b", "beta")
    state.models["llama3:latest"] = dict(state.models["forge-alpha:latest"])

    refused = CliRunner().invoke(main, ["ollama", "rm", "llama3"])
    assert refused.exit_code != 0
    assert "not a Forge model" in refused.output

    removed = CliRunner().invoke(main, ["ollama", "rm", "forge-alpha"])
    assert removed.exit_code == 0, removed.output
    assert "forge-alpha:latest" not in state.models

    missing = CliRunner().invoke(main, ["ollama", "rm", "forge-alpha"])
    assert missing.exit_code == 1
    assert "not found" in missing.output

    everything = CliRunner().invoke(main, ["ollama", "rm", "--all", "--yes"])
    assert everything.exit_code == 0, everything.output
    assert sorted(state.models) == ["llama3:latest"]


def test_commands_explain_an_unreachable_ollama(free_port: int) -> None:
    result = CliRunner().invoke(main, ["ollama", "list", "--host", f"127.0.0.1:{free_port}"])
    assert result.exit_code == 1
    assert "Ollama is not reachable" in result.output
    assert "OLLAMA_HOST" in result.output

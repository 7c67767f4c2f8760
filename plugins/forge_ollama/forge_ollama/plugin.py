"""forge_ollama hook implementations: the ``ollama`` deploy target and ``forge ollama``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

    from forge_core.contracts import DeployRequest, DeployResult


@hookimpl
def provided_names() -> dict[str, list[str]]:
    """``deploy: ollama``."""
    return {"deploy": ["ollama"]}


@hookimpl
def deploy(request: DeployRequest) -> DeployResult:
    """Create the model in Ollama from the GGUF, with its chat template translated."""
    from forge_ollama.deploy import deploy_to_ollama

    return deploy_to_ollama(request)


@hookimpl
def register_cli_commands() -> list[click.Command]:
    """``forge ollama list|rm``."""
    from forge_ollama.cli import ollama_group

    return [ollama_group]

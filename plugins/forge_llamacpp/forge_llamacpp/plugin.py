"""forge_llamacpp hook implementations (llama_cpp is imported inside the hooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forge_core.backends import ModelBackendSpec
from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

    from forge_core.contracts import DeployRequest, DeployResult


@hookimpl
def provided_names() -> dict[str, list[str]]:
    """``deploy: llamacpp``."""
    return {"deploy": ["llamacpp"]}


@hookimpl
def deploy(request: DeployRequest) -> DeployResult:
    """Serve the GGUF with llama-cpp-python's OpenAI-compatible server."""
    from forge_llamacpp.deploy import deploy_llamacpp

    return deploy_llamacpp(request)


def _load_backend(model: str, adapter: str | None, options: dict[str, object]) -> Any:
    from forge_llamacpp.backend import load_llamacpp_backend

    return load_llamacpp_backend(model, adapter, options)


@hookimpl
def register_model_backends() -> list[ModelBackendSpec]:
    """The ``llamacpp`` backend: generation and token log-probs of a GGUF file."""
    return [
        ModelBackendSpec(
            "llamacpp",
            _load_backend,
            "llama.cpp (llama-cpp-python) on a GGUF file, CPU or GPU",
            formats=("gguf",),
        )
    ]


@hookimpl
def register_cli_commands() -> list[click.Command]:
    """``forge llamacpp stop|status``."""
    from forge_llamacpp.cli import llamacpp_group

    return [llamacpp_group]

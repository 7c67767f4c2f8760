"""forge_torch hook implementations (imports of torch happen inside the hooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forge_core.backends import ModelBackendSpec
from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

    from forge_core.contracts import (
        InitAdapterRequest,
        InitAdapterResult,
        TrainRequest,
        TrainResult,
    )


@hookimpl
def provided_names() -> dict[str, list[str]]:
    """``train: torch``, ``init_adapter: lora``."""
    return {"train": ["torch"], "init_adapter": ["lora"]}


@hookimpl
def train(request: TrainRequest) -> TrainResult:
    """Train an adapter with the PyTorch loop."""
    from forge_torch.trainer import train as run_training

    return run_training(request)


@hookimpl
def init_adapter(request: InitAdapterRequest) -> InitAdapterResult:
    """Plain LoRA (QLoRA with ``train.quantize_4bit``)."""
    from forge_torch.lora import init_lora

    return init_lora(request)


def _load_backend(model: str, adapter: str | None, options: dict[str, object]) -> Any:
    from forge_torch.backend import load_torch_backend

    return load_torch_backend(model, adapter, options)


@hookimpl
def register_model_backends() -> list[ModelBackendSpec]:
    """The ``torch`` backend: transformers generation and token log-probs."""
    return [ModelBackendSpec("torch", _load_backend, "transformers + PEFT on CUDA, MPS or CPU")]


@hookimpl
def register_cli_commands() -> list[click.Command]:
    """``forge plan``: memory estimates and the settings that fit this machine."""
    from forge_torch.plan_cli import plan

    return [plan]

"""Plain LoRA (and QLoRA) adapters: the baseline ``init_adapter`` method ``lora``."""

from __future__ import annotations

from typing import Any

from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

from forge_core.config import TrainSettings
from forge_core.contracts import InitAdapterRequest, InitAdapterResult
from forge_torch.model import load_base_model, pick_placement


def lora_config(settings: TrainSettings, init: Any = True) -> LoraConfig:
    """The PEFT config for ``train`` settings (``init``: PEFT's ``init_lora_weights``)."""
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        init_lora_weights=init,
        task_type="CAUSAL_LM",
    )


def init_lora(request: InitAdapterRequest) -> InitAdapterResult:
    """Wrap the base model with a fresh LoRA adapter (4-bit base for QLoRA, CUDA only)."""
    settings = TrainSettings.model_validate(request.settings)
    model = request.model
    notes = []
    if model is None or settings.quantize_4bit:
        placement = pick_placement(settings.device)
        model = load_base_model(request.base_model, placement, quantize_4bit=settings.quantize_4bit)
    if settings.quantize_4bit:
        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=bool(settings.gradient_checkpointing)
        )
        notes.append("QLoRA: 4-bit NF4 base with double quantisation, bf16 compute")
    peft_model = get_peft_model(model, lora_config(settings))
    return InitAdapterResult(method="lora", model=peft_model, notes=notes)

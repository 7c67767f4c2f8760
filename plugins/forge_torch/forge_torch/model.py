"""Loading base models and tokenizers: device, precision, 4-bit quantisation."""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase


class QLoRAUnavailable(RuntimeError):
    """4-bit training was asked for where bitsandbytes cannot run it."""


@dataclass(frozen=True)
class Placement:
    """Where and in which precision a model runs."""

    device: torch.device
    dtype: torch.dtype

    @property
    def label(self) -> str:
        """E.g. ``cuda bf16``."""
        names = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
        return f"{self.device.type} {names.get(self.dtype, str(self.dtype))}"


def pick_placement(preference: str = "auto") -> Placement:
    """The device (``auto``: CUDA, then Apple MPS, then CPU) and its training precision.

    bf16 where the device supports it well (CUDA with bf16); fp32 elsewhere: on
    most CPUs bf16 matmuls are slower than fp32, and MPS bf16 support varies.
    """
    if preference == "auto":
        if torch.cuda.is_available():
            preference = "cuda"
        elif torch.backends.mps.is_available():
            preference = "mps"
        else:
            preference = "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA GPU is visible to torch")
    if preference == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("train.device is 'mps' but Apple MPS is not available")
    device = torch.device(preference)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return Placement(device, torch.bfloat16 if bf16 else torch.float32)


def bitsandbytes_config(placement: Placement) -> Any:
    """The QLoRA quantisation: 4-bit NF4, double quantisation, bf16 compute (CUDA only)."""
    if placement.device.type != "cuda":
        raise QLoRAUnavailable(
            f"4-bit QLoRA/QPiSSA needs an NVIDIA GPU (bitsandbytes); this run is on "
            f"{placement.device.type}. Set train.quantize_4bit=false to train in "
            f"{placement.label}, or run on a CUDA machine."
        )
    try:
        # Imported by name: an optional CUDA-only package, often absent (and untyped).
        importlib.import_module("bitsandbytes")
    except ImportError as exc:
        raise QLoRAUnavailable(
            "4-bit training needs bitsandbytes: pip install 'forge-torch[cuda]'"
        ) from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token (the EOS token when it has none)."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(
            f"the tokenizer of {path} has no chat template; Forge trains on chat-formatted "
            "RAFT examples: pick an instruct/chat model or add a chat_template to "
            "tokenizer_config.json"
        )
    return tokenizer


def load_base_model(
    path: str, placement: Placement, *, quantize_4bit: bool = False
) -> torch.nn.Module:
    """Load a causal LM for training or inference (4-bit NF4 when asked, CUDA only)."""
    kwargs: dict[str, Any] = {"dtype": placement.dtype, "attn_implementation": "sdpa"}
    if quantize_4bit:
        kwargs["quantization_config"] = bitsandbytes_config(placement)
        kwargs["device_map"] = {"": placement.device.index or 0}
    model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not quantize_4bit:
        model.to(placement.device)
    return model


def save_pissa_as_lora(
    peft_model: Any, target: str | Path, initial_adapter_dir: str | Path
) -> None:
    """Save a trained PiSSA adapter converted to a plain LoRA adapter for the original base.

    PEFT loads the initial adapter beside the trained one to subtract it, and warns that
    PiSSA should not be mixed with other adapters: this conversion is what that warning
    recommends, so it is not shown.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PiSSA changes the base weights")
        peft_model.save_pretrained(
            str(target), path_initial_model_for_weight_conversion=str(initial_adapter_dir)
        )

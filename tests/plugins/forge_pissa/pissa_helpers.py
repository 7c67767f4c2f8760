"""Tiny causal LMs built from configs in code, and helpers shared by the PiSSA tests.

A plain module with a unique name (not a conftest): the test modules import it
directly, which works whichever other test folders pytest collects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from peft.tuners.lora import LoraLayer
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from forge_core.contracts import InitAdapterRequest

TINY = {
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
ARCHITECTURES: dict[str, tuple[type[Any], type[Any]]] = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
}
#: The rank and alpha of the tests: scaling 2, so a forgotten scaling shows.
RANK, ALPHA = 8, 16
PEFT_PREFIX = "base_model.model."
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(arch: str, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised two-layer ``arch`` model in fp32 (no download)."""
    config_class, model_class = ARCHITECTURES[arch]
    torch.manual_seed(seed)
    model: PreTrainedModel = model_class(config_class(**TINY))
    return model


def pissa_request(
    method: str, output_dir: Path, model: Any = None, base_model: str = "tiny", **settings: Any
) -> InitAdapterRequest:
    """An ``init_adapter`` request with the tests' rank and alpha."""
    train = {"method": method, "rank": RANK, "alpha": ALPHA, **settings}
    return InitAdapterRequest(
        method=method,
        base_model=base_model,
        settings=train,
        output_dir=str(output_dir),
        model=model,
    )


def linear_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every ``nn.Linear`` weight, by module name."""
    return {
        name: module.weight.detach().clone()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }


def lora_layers(peft_model: torch.nn.Module) -> Iterator[tuple[str, Any]]:
    """(name in the unwrapped base, LoRA layer) for every adapted layer."""
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer):
            yield name.removeprefix(PEFT_PREFIX), module


def adapter_delta(layer: Any, adapter: str = "default") -> torch.Tensor:
    """``s·B·A`` of one LoRA layer, in fp32."""
    a = layer.lora_A[adapter].weight.float()
    b = layer.lora_B[adapter].weight.float()
    return (b @ a) * layer.scaling[adapter]


def train_a_few_steps(model: torch.nn.Module, steps: int = 3, seed: int = 0) -> list[float]:
    """A few AdamW steps on random tokens, so the adapter moves away from its init."""
    device = next(p.device for p in model.parameters() if p.requires_grad)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, TINY["vocab_size"], (2, 12), generator=generator).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(input_ids=inputs, labels=inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained here on a few lines, with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    specials = ["<unk>", "<pad>", "</s>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [
        "def add(a, b): return a + b",
        "class Deque: def append(self, item): self.items.append(item)",
        "user assistant system what does this function return ?",
    ]
    tokenizer.train_from_iterator(
        corpus, trainers.WordLevelTrainer(vocab_size=TINY["vocab_size"], special_tokens=specials)
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="</s>",
        chat_template=CHAT_TEMPLATE,
    )


def save_tiny_base(model: PreTrainedModel, path: Path) -> Path:
    """Save a tiny model with a tiny tokenizer as a base-model directory; return its path."""
    model.save_pretrained(str(path))
    build_tiny_tokenizer().save_pretrained(str(path))
    return path

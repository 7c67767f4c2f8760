"""A trained PiSSA adapter, converted to plain LoRA, gives the same model on the original base."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from pissa_helpers import (
    ALPHA,
    RANK,
    TINY,
    build_tiny_model,
    linear_weights,
    pissa_request,
    save_tiny_base,
    train_a_few_steps,
)
from transformers import AutoModelForCausalLM, AutoTokenizer

from forge_pissa.adapter import convert_to_lora, init_pissa, save_residual_base


def max_difference(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> float:
    """The largest element-wise difference between two state dicts with the same keys."""
    assert left.keys() == right.keys()
    return max((left[k].float() - right[k].float()).abs().max().item() for k in left)


@pytest.mark.parametrize(
    ("arch", "method"),
    [
        ("llama", "pissa"),
        ("llama", "pissa_niter_4"),
        ("qwen2", "pissa"),
        ("qwen2", "pissa_niter_4"),
    ],
)
def test_converted_lora_on_the_original_base_equals_the_trained_pissa_model(
    arch: str, method: str, tmp_path: Path
) -> None:
    model = build_tiny_model(arch)
    original = copy.deepcopy(model)
    original_weights = linear_weights(original)
    result = init_pissa(pissa_request(method, tmp_path / "init", model=model))
    peft_model = result.model
    losses = train_a_few_steps(peft_model, steps=3)
    assert losses[-1] < losses[0]

    lora_dir = convert_to_lora(
        peft_model, tmp_path / "lora", result.initial_adapter_dir or "", base_model="tiny-base"
    )

    config = json.loads((lora_dir / "adapter_config.json").read_text())
    assert config["r"] == 2 * RANK and config["lora_alpha"] == 2 * ALPHA
    assert config["init_lora_weights"] is True
    assert config["base_model_name_or_path"] == "tiny-base"
    inputs = torch.randint(
        0, TINY["vocab_size"], (3, 16), generator=torch.Generator().manual_seed(5)
    )

    pissa_merged = peft_model.merge_and_unload().eval()
    lora_merged = PeftModel.from_pretrained(original, str(lora_dir)).merge_and_unload().eval()

    pissa_state, lora_state = pissa_merged.state_dict(), lora_merged.state_dict()
    weight_gap = max_difference(pissa_state, lora_state)
    trained_change = max(
        (pissa_state[f"{name}.weight"] - weight).abs().max().item()
        for name, weight in original_weights.items()
    )
    with torch.no_grad():
        logit_gap = (
            (pissa_merged(input_ids=inputs).logits - lora_merged(input_ids=inputs).logits)
            .abs()
            .max()
            .item()
        )
    print(f"{arch} {method}: max|W_pissa − W_lora| = {weight_gap:.3g}, logits {logit_gap:.3g}")
    assert trained_change > 1e-3, "training did not move the adapter: the check would be vacuous"
    assert weight_gap <= 1e-5
    assert logit_gap <= 1e-5


def test_converting_needs_the_initial_adapter(tmp_path: Path) -> None:
    result = init_pissa(pissa_request("pissa", tmp_path / "init", model=build_tiny_model("llama")))
    with pytest.raises(FileNotFoundError, match="initial_adapter_dir"):
        convert_to_lora(result.model, tmp_path / "lora", tmp_path / "nowhere")
    assert not (tmp_path / "lora").exists()


def test_residual_base_with_initial_adapter_is_the_pissa_model(tmp_path: Path) -> None:
    """The QPiSSA files, checked at full precision: the 4-bit reload is the CUDA test's."""
    base_dir = save_tiny_base(build_tiny_model("llama"), tmp_path / "base")
    request = pissa_request(
        "pissa_niter_4", tmp_path / "init", base_model=str(base_dir), device="cpu"
    )
    result = init_pissa(request)
    peft_model = result.model
    inputs = torch.randint(
        0, TINY["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        expected = peft_model.eval()(input_ids=inputs).logits

    residual_dir = save_residual_base(peft_model, str(base_dir), tmp_path / "init")

    assert (residual_dir / "model.safetensors").is_file()
    assert (residual_dir / "tokenizer.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(residual_dir))
    assert tokenizer.chat_template is not None
    residual = AutoModelForCausalLM.from_pretrained(str(residual_dir), dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(residual, result.initial_adapter_dir, is_trainable=True)
    with torch.no_grad():
        got = reloaded.eval()(input_ids=inputs).logits
    assert (got - expected).abs().max().item() <= 1e-5
    assert any(p.requires_grad for n, p in reloaded.named_parameters() if "lora_" in n)
    assert not any(p.requires_grad for n, p in reloaded.named_parameters() if "lora_" not in n)

"""QPiSSA: a clear refusal where 4-bit cannot run, and the whole path on an NVIDIA GPU."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from pissa_helpers import (
    RANK,
    adapter_delta,
    build_tiny_model,
    linear_weights,
    lora_layers,
    pissa_request,
    save_tiny_base,
    train_a_few_steps,
)
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from forge_pissa.adapter import RESIDUAL_BASE_DIR, convert_to_lora, init_pissa
from forge_torch.model import QLoRAUnavailable

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None,
    reason="needs an NVIDIA GPU with bitsandbytes",
)


def test_qpissa_on_cpu_says_why_and_what_to_do(tmp_path: Path) -> None:
    request = pissa_request(
        "pissa_niter_4",
        tmp_path / "init",
        model=build_tiny_model("llama"),
        base_model=str(tmp_path / "not-loaded"),
        quantize_4bit=True,
        device="cpu",
    )

    with pytest.raises(QLoRAUnavailable) as error:
        init_pissa(request)

    message = str(error.value)
    assert "NVIDIA GPU" in message and "on cpu" in message
    assert "train.quantize_4bit=false" in message and "CUDA machine" in message
    # Refused before any SVD or write (the base path does not even exist).
    assert not (tmp_path / "init").exists()


def add_principal_components(model: PreTrainedModel, rank: int = 4, scale: float = 10.0) -> None:
    """Give every decoder linear a few dominant singular directions, as trained LLMs have."""
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name != "lm_head":
                out_features, in_features = module.weight.shape
                left = torch.linalg.qr(torch.randn(out_features, rank, generator=generator))[0]
                right = torch.linalg.qr(torch.randn(in_features, rank, generator=generator))[0]
                top = torch.linalg.matrix_norm(module.weight, ord=2)
                module.weight += scale * top * (left @ right.T)


def relative_error(approximation: torch.Tensor, exact: torch.Tensor) -> float:
    """‖approximation − exact‖_F / ‖exact‖_F."""
    return (torch.linalg.norm(approximation - exact) / torch.linalg.norm(exact)).item()


@pytest.mark.cuda
@needs_cuda
def test_qpissa_end_to_end_on_cuda(tmp_path: Path) -> None:
    import bitsandbytes as bnb
    from bitsandbytes.functional import dequantize_4bit, quantize_4bit

    model = build_tiny_model("llama")
    add_principal_components(model)
    original = linear_weights(model)
    base_dir = save_tiny_base(model, tmp_path / "base")
    request = pissa_request(
        "pissa", tmp_path / "init", base_model=str(base_dir), quantize_4bit=True, device="cuda"
    )

    result = init_pissa(request)

    residual_dir = Path(result.residual_base or "")
    assert residual_dir == tmp_path / "init" / RESIDUAL_BASE_DIR
    assert (residual_dir / "model.safetensors").is_file()
    assert AutoTokenizer.from_pretrained(str(residual_dir)).chat_template is not None
    layers = dict(lora_layers(result.model))
    assert len(layers) == 14
    pissa_errors, qlora_errors = [], []
    for name, layer in layers.items():
        base_layer = layer.get_base_layer()
        assert isinstance(base_layer, bnb.nn.Linear4bit), f"{name} is not 4-bit"
        weight = original[name].cuda()
        residual = dequantize_4bit(base_layer.weight.data, base_layer.weight.quant_state)
        pissa_errors.append(relative_error(residual.float() + adapter_delta(layer), weight))
        # QLoRA's error for comparison: W itself quantized the same way (NF4, bf16).
        packed, state = quantize_4bit(weight.to(torch.bfloat16), quant_type="nf4")
        qlora_errors.append(relative_error(dequantize_4bit(packed, state).float(), weight))
    print(
        f"QPiSSA relative error max {max(pissa_errors):.4f} "
        f"(QLoRA on W: max {max(qlora_errors):.4f})"
    )
    assert max(pissa_errors) <= 0.05, "Quant(W_res) + s·B·A is not W within 4-bit error"
    assert all(p < 0.5 * q for p, q in zip(pissa_errors, qlora_errors, strict=True))

    before = {k: v.detach().clone() for k, v in result.model.named_parameters() if v.requires_grad}
    losses = train_a_few_steps(result.model, steps=1)
    assert all(torch.isfinite(torch.tensor(losses)))
    after = dict(result.model.named_parameters())
    assert before and all("lora_" in k for k in before)
    assert any(not torch.equal(before[k], after[k]) for k in before)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT warns that Quant(W_res) + ΔW ≠ W + ΔW exactly
        lora_dir = convert_to_lora(
            result.model, tmp_path / "lora", result.initial_adapter_dir or ""
        )
    assert json.loads((lora_dir / "adapter_config.json").read_text())["r"] == 2 * RANK
    reference = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).cuda()
    merged = PeftModel.from_pretrained(reference, str(lora_dir)).merge_and_unload()
    for name, layer in result.model.named_modules():
        short = name.removeprefix("base_model.model.")
        if short in layers:
            base_layer = layer.get_base_layer()
            trained = dequantize_4bit(base_layer.weight.data, base_layer.weight.quant_state)
            trained = trained.float() + adapter_delta(layer)
            converted = merged.get_submodule(short).weight.float()
            assert relative_error(trained, converted) <= 0.05, short

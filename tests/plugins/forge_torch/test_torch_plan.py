"""The memory planner: estimates track measured peaks; choices follow the seed table's logic."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from forge_torch.plan import GIB, KNOWN_SHAPES, choose, estimate, shape_from_config
from forge_torch.plan_cli import plan


def test_shape_from_config_matches_the_model(tiny_llama: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    shape = shape_from_config(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    counted = sum(p.numel() for p in model.parameters())
    assert shape.parameters == counted
    assert json.loads((tiny_llama / "config.json").read_text())["hidden_size"] == shape.hidden
    del torch


def test_estimates_grow_the_right_way() -> None:
    seven = KNOWN_SHAPES["7b"]
    full = estimate(seven, seq_len=2048, batch=1)
    checkpointed = estimate(seven, seq_len=2048, batch=1, gradient_checkpointing=True)
    quantized = estimate(
        seven, seq_len=2048, batch=1, quantize_4bit=True, gradient_checkpointing=True
    )
    assert full.total > checkpointed.total > quantized.total
    assert estimate(seven, seq_len=4096, batch=1).activations == 2 * full.activations
    # the target: a 7B-shaped QLoRA run at sequence 2048 in <= 8 GiB
    assert quantized.total < 8 * GIB


def test_choices_prefer_speed_then_fit() -> None:
    three, seven, thirteen = KNOWN_SHAPES["3b"], KNOWN_SHAPES["7b"], KNOWN_SHAPES["13b"]
    big = choose(three, 80 * GIB, seq_len=2048)
    assert not big.quantize_4bit and not big.gradient_checkpointing and big.batch_size > 1
    tight = choose(seven, 16 * GIB, seq_len=2048)
    assert tight.fits and (tight.quantize_4bit or tight.gradient_checkpointing)
    assert not choose(thirteen, 4 * GIB, seq_len=2048).fits
    preferred = choose(seven, 16 * GIB, seq_len=2048, prefer_4bit=True, usable_fraction=0.78)
    assert preferred.quantize_4bit and preferred.gradient_checkpointing and preferred.fits
    no_4bit = choose(seven, 80 * GIB, seq_len=2048, allow_4bit=False, weight_bytes=4.0)
    assert not no_4bit.quantize_4bit and no_4bit.estimate.weights == seven.parameters * 4.0
    assert no_4bit.label.startswith("fp32 + ")


def test_plan_command_prints_settings(tiny_llama: Path) -> None:
    result = CliRunner().invoke(plan, [str(tiny_llama), "--memory-gb", "8", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "--set train.quantize_4bit=false" in result.output
    assert "fits" in result.output
    unknown = CliRunner().invoke(plan, ["nonsense-model"])
    assert unknown.exit_code != 0 and "neither a model folder" in unknown.output


def plan_output(*arguments: str) -> str:
    result = CliRunner().invoke(plan, list(arguments))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_plan_offers_4bit_only_on_cuda_and_fp32_on_cpu_and_mps() -> None:
    mps = plan_output("7b", "--device", "mps", "--memory-gb", "16")
    assert "4-bit" not in mps and "--set train.quantize_4bit=false" in mps
    assert "does NOT fit" in mps  # 7B in fp32 needs 27 GiB for the weights alone
    cuda = plan_output("7b", "--device", "cuda", "--memory-gb", "8")
    assert "4-bit NF4" in cuda and "--set train.quantize_4bit=true" in cuda
    cpu = plan_output("1.5b", "--device", "cpu", "--memory-gb", "32", "--seq-len", "1024")
    shape = KNOWN_SHAPES["1.5b"]
    chosen = choose(
        shape, 32 * GIB, seq_len=1024, allow_4bit=False, weight_bytes=4.0, usable_fraction=0.8
    )
    assert chosen.estimate.weights == shape.parameters * 4.0
    assert f"cpu with 32 GiB: {chosen.label} (≈{chosen.estimate.total / GIB:.1f} GiB)" in cpu
    assert chosen.label == "fp32 + full speed, batch 2"
    full = estimate(shape, seq_len=1024, batch=1, weight_bytes=4.0)
    assert f"fp32 │ no │ {full.total / GIB:.1f}" in cpu

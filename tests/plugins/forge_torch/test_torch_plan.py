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
    mac16 = choose(seven, 16 * GIB, seq_len=2048, prefer_4bit=True, usable_fraction=0.78)
    assert mac16.quantize_4bit and mac16.gradient_checkpointing and mac16.fits
    mac32 = choose(thirteen, 32 * GIB, seq_len=2048, prefer_4bit=True, usable_fraction=0.78)
    assert mac32.quantize_4bit and mac32.gradient_checkpointing and mac32.fits


def test_plan_command_prints_settings(tiny_llama: Path) -> None:
    result = CliRunner().invoke(plan, [str(tiny_llama), "--memory-gb", "8", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "--set train.quantize_4bit=false" in result.output
    assert "fits" in result.output
    unknown = CliRunner().invoke(plan, ["nonsense-model"])
    assert unknown.exit_code != 0 and "neither a model folder" in unknown.output

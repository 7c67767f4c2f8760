"""Merging: the merged weights are exactly base + s·B·A, saved with the adapter's tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from forge_gguf.merge import merge_adapter, tokenizer_source


def test_merged_weights_equal_base_plus_adapter_delta(
    tiny_llama: Path, llama_adapter: Path, tmp_path: Path
) -> None:
    merged = merge_adapter(str(tiny_llama), str(llama_adapter), tmp_path / "merged")
    base = load_file(tiny_llama / "model.safetensors")
    adapter = load_file(llama_adapter / "adapter_model.safetensors")
    config = json.loads((llama_adapter / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    weights = load_file(merged / "model.safetensors")
    changed = 0
    for name, base_weight in base.items():
        module = name.removesuffix(".weight")
        a_key = f"base_model.model.{module}.lora_A.weight"
        b_key = f"base_model.model.{module}.lora_B.weight"
        if a_key in adapter:
            expected = base_weight + scale * adapter[b_key] @ adapter[a_key]
            changed += 1
        else:
            expected = base_weight
        torch.testing.assert_close(weights[name], expected, rtol=0, atol=1e-6)
        assert weights[name].dtype == torch.float32
    assert changed == 2 * 6  # six adapted projections in each of two layers
    assert not (tmp_path / "merged.partial").exists()
    assert (merged / "tokenizer.json").is_file()
    assert "lora" not in " ".join(weights)


def test_tokenizer_comes_from_the_adapter(tiny_llama: Path, tmp_path: Path) -> None:
    assert tokenizer_source(str(tiny_llama), None) == str(tiny_llama)
    assert tokenizer_source(str(tiny_llama), str(tmp_path)) == str(tiny_llama)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_text("{}")
    assert tokenizer_source(str(tiny_llama), str(tmp_path)) == str(tmp_path)


def test_no_adapter_saves_the_base(tiny_llama: Path, tmp_path: Path) -> None:
    merged = merge_adapter(str(tiny_llama), None, tmp_path / "merged")
    base = load_file(tiny_llama / "model.safetensors")
    weights = load_file(merged / "model.safetensors")
    assert weights.keys() == base.keys()
    for name, value in base.items():
        assert torch.equal(weights[name], value)


@pytest.mark.parametrize("missing", ["base", "adapter"])
def test_missing_inputs_raise(tiny_llama: Path, tmp_path: Path, missing: str) -> None:
    base = str(tmp_path / "nope") if missing == "base" else str(tiny_llama)
    adapter = str(tmp_path / "nope") if missing == "adapter" else None
    with pytest.raises((OSError, ValueError)):
        merge_adapter(base, adapter, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()

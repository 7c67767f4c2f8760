"""PiSSA initialisation maths, determinism, the plugin hooks and their errors (CPU, tiny models)."""

from __future__ import annotations

import copy
import json
from importlib import metadata
from pathlib import Path

import pytest
import torch
from pissa_helpers import (
    RANK,
    adapter_delta,
    build_tiny_model,
    linear_weights,
    lora_layers,
    pissa_request,
)
from pydantic import ValidationError

from forge_core.contracts import InitAdapterResult
from forge_core.plugins import PluginRegistry
from forge_pissa import plugin
from forge_pissa.adapter import INITIAL_ADAPTER_DIR, check_method, init_pissa

#: Linear layers per decoder layer (q, k, v, o, gate, up, down) × 2 layers; never lm_head.
ADAPTED_LAYERS = 14


@pytest.mark.parametrize("method", ["pissa", "pissa_niter_4"])
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_residual_plus_adapter_is_the_original_weight(
    arch: str, method: str, tmp_path: Path
) -> None:
    model = build_tiny_model(arch)
    original = linear_weights(model)

    result = init_pissa(pissa_request(method, tmp_path, model=model))

    layers = dict(lora_layers(result.model))
    assert len(layers) == ADAPTED_LAYERS
    assert "lm_head" not in layers
    worst = 0.0
    for name, layer in layers.items():
        residual = layer.get_base_layer().weight.detach()
        assert not torch.allclose(residual, original[name]), f"{name} still holds W, not W_res"
        error = (residual + adapter_delta(layer) - original[name]).abs().max().item()
        worst = max(worst, error)
    assert worst <= 1e-5, f"max |W_res + s·B·A − W| = {worst:.3g}"


def test_full_svd_adapter_holds_the_top_singular_values(tmp_path: Path) -> None:
    model = build_tiny_model("llama")
    original = linear_weights(model)

    result = init_pissa(pissa_request("pissa", tmp_path, model=model))

    for name, layer in lora_layers(result.model):
        expected = torch.linalg.svdvals(original[name])
        delta = adapter_delta(layer).detach()
        assert torch.linalg.matrix_rank(delta).item() == RANK
        got = torch.linalg.svdvals(delta)[:RANK]
        torch.testing.assert_close(got, expected[:RANK], rtol=1e-4, atol=1e-6)
        # What is left in the base is the rest of the spectrum.
        rest = torch.linalg.svdvals(layer.get_base_layer().weight.detach())
        torch.testing.assert_close(
            rest[: len(expected) - RANK], expected[RANK:], rtol=1e-4, atol=1e-6
        )


def test_model_output_is_unchanged_at_init(tmp_path: Path) -> None:
    model = build_tiny_model("qwen2")
    reference = copy.deepcopy(model).eval()
    inputs = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(1))

    result = init_pissa(pissa_request("pissa_niter_2", tmp_path, model=model))

    with torch.no_grad():
        expected = reference(input_ids=inputs).logits
        got = result.model.eval()(input_ids=inputs).logits
    assert (got - expected).abs().max().item() <= 1e-5


def test_initial_adapter_is_saved_for_conversion(tmp_path: Path) -> None:
    result = init_pissa(pissa_request("pissa_niter_4", tmp_path, model=build_tiny_model("llama")))

    initial = Path(result.initial_adapter_dir or "")
    assert initial == tmp_path / INITIAL_ADAPTER_DIR
    config = json.loads((initial / "adapter_config.json").read_text())
    assert config["init_lora_weights"] is True
    assert (config["r"], config["lora_alpha"]) == (RANK, 16)
    assert (initial / "adapter_model.safetensors").is_file()
    # The live model still knows how it was initialised; nothing half-written is left.
    assert result.model.peft_config["default"].init_lora_weights == "pissa_niter_4"
    assert sorted(p.name for p in tmp_path.iterdir()) == [INITIAL_ADAPTER_DIR]
    assert result.residual_base is None
    assert any("randomized SVD, 4 iters" in note for note in result.notes)


def test_pissa_niter_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    def adapter_weights(seed: int, name: str) -> dict[str, torch.Tensor]:
        torch.manual_seed(1000 + seed * 7 + len(name))  # the global RNG must not matter
        request = pissa_request(
            "pissa_niter_4", tmp_path / name, model=build_tiny_model("llama"), seed=seed
        )
        model = init_pissa(request).model
        return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}

    first, again, other = adapter_weights(3, "a"), adapter_weights(3, "b"), adapter_weights(4, "c")

    assert first.keys() == again.keys() and len(first) == 2 * ADAPTED_LAYERS
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("method", ["lora", "pissa_fast", "pissa_niter_", "pissa_niter_x", "PiSSA"])
def test_unknown_method_is_refused_with_the_valid_ones(method: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'pissa'.*'pissa_niter_N'") as error:
        init_pissa(pissa_request(method, tmp_path, model=build_tiny_model("llama")))
    assert repr(method) in str(error.value)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


@pytest.mark.parametrize("method", ["pissa", "pissa_niter_0", "pissa_niter_16"])
def test_known_methods(method: str) -> None:
    assert check_method(method) == method


def test_misspelt_setting_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ranks"):
        init_pissa(pissa_request("pissa", tmp_path, model=build_tiny_model("llama"), ranks=4))


def test_quantized_model_given_for_plain_pissa_is_refused(tmp_path: Path) -> None:
    model = build_tiny_model("llama")
    model.is_loaded_in_4bit = True  # what transformers sets on a bitsandbytes 4-bit model
    with pytest.raises(ValueError, match=r"quantize_4bit=true"):
        init_pissa(pissa_request("pissa", tmp_path, model=model))


def test_plugin_declares_its_names() -> None:
    assert plugin.provided_names() == {"init_adapter": ["pissa", "pissa_niter_*"]}


def test_entry_point_is_installed() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="forge")}
    assert points.get("pissa") == "forge_pissa.plugin"


def test_registry_selects_and_calls_the_plugin_by_name(tmp_path: Path) -> None:
    registry = PluginRegistry(builtins=False)
    assert registry.info("pissa").status == "loaded", registry.info("pissa").error
    assert registry.find("init_adapter", "pissa") == "pissa"
    assert registry.find("init_adapter", "pissa_niter_16") == "pissa"

    request = pissa_request("pissa_niter_4", tmp_path, model=build_tiny_model("qwen2"))
    result = registry.call("init_adapter", request.method, request)

    assert isinstance(result, InitAdapterResult)
    assert result.method == "pissa_niter_4"
    assert len(dict(lora_layers(result.model))) == ADAPTED_LAYERS
    # The in-process model stays out of the JSON form of the result.
    assert "model" not in json.loads(result.model_dump_json())


def test_registry_passes_on_a_bad_niter(tmp_path: Path) -> None:
    registry = PluginRegistry(builtins=False)
    request = pissa_request("pissa_niter_many", tmp_path, model=build_tiny_model("llama"))
    with pytest.raises(ValueError, match="pissa_niter_N"):
        registry.call("init_adapter", request.method, request)

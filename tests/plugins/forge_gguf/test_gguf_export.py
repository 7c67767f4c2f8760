"""The ``export`` hook end to end: merge, convert, quantise, fidelity gates, via the registry."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")
pytest.importorskip("llama_cpp")

from gguf_helpers import build_model  # noqa: E402

from forge_core.contracts import ExportRequest, ExportResult  # noqa: E402
from forge_core.plugins import PluginRegistry  # noqa: E402
from forge_gguf.export import export_model  # noqa: E402
from forge_gguf.quantize import check_quantizations  # noqa: E402


def run_export(registry: PluginRegistry, request: ExportRequest) -> ExportResult:
    """Call the hook the way the pipeline does."""
    return ExportResult.model_validate(registry.call("export", "gguf", request))


@pytest.fixture(scope="module")
def llama_export(
    tiny_llama: Path, llama_adapter: Path, tmp_path_factory: pytest.TempPathFactory
) -> ExportResult:
    out = tmp_path_factory.mktemp("export")
    request = ExportRequest(
        base_model=str(tiny_llama),
        adapter_dir=str(llama_adapter),
        output_dir=str(out),
        settings={"exporter": "gguf", "quantizations": ["F16", "Q8_0", "Q4_K_M"]},
    )
    return run_export(PluginRegistry(), request)


def test_plugin_is_discovered_by_entry_point() -> None:
    registry = PluginRegistry()
    assert registry.find("export", "gguf") == "gguf"
    assert metadata.version("forge-gguf") == "0.1.0"


def test_plugin_module_is_light() -> None:
    code = (
        "import sys, forge_gguf.plugin; "
        "heavy = {'torch', 'transformers', 'gguf', 'llama_cpp', 'numpy'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_export_writes_every_quantisation(llama_export: ExportResult) -> None:
    by_quant = {a.quantization: a for a in llama_export.artifacts}
    assert list(by_quant) == ["F16", "Q8_0", "Q4_K_M"]
    out = Path(llama_export.artifacts[0].path).parent
    for quant, artifact in by_quant.items():
        assert Path(artifact.path) == out / f"model-{quant}.gguf"
        assert artifact.size_bytes == Path(artifact.path).stat().st_size > 0
    assert by_quant["Q4_K_M"].size_bytes < by_quant["Q8_0"].size_bytes < by_quant["F16"].size_bytes
    assert sorted(p.name for p in out.iterdir()) == [
        "merged",
        "model-F16.gguf",
        "model-Q4_K_M.gguf",
        "model-Q8_0.gguf",
    ]
    assert Path(llama_export.merged_model_dir or "") == out / "merged"
    q8 = {t.name: t.tensor_type for t in gguf.GGUFReader(by_quant["Q8_0"].path).tensors}
    assert q8["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0


def test_fidelity_gates_pass_with_numbers(llama_export: ExportResult) -> None:
    by_quant = {a.quantization: a for a in llama_export.artifacts}
    for quant, gate in (("F16", 0.99), ("Q8_0", 0.98)):
        fidelity = by_quant[quant].fidelity
        assert by_quant[quant].passed, fidelity
        assert fidelity["tokenization_identical"] == 1.0
        assert fidelity["tokenization_mismatches"] == 0.0
        assert fidelity["top1_agreement_near_ties"] >= gate
        assert fidelity["top1_agreement"] <= fidelity["top1_agreement_near_ties"]
        assert fidelity["min_top1"] == gate
        assert fidelity["positions"] == 256
        assert 0.0 <= fidelity["mean_kl"] <= fidelity["max_kl"]
    assert by_quant["F16"].fidelity["mean_kl"] < 1e-3
    q4 = by_quant["Q4_K_M"]
    assert q4.passed and "min_top1" not in q4.fidelity  # reported only
    assert q4.fidelity["tokenization_identical"] == 1.0
    print({a.quantization: a.fidelity for a in llama_export.artifacts})


def test_a_failing_gate_is_reported(tiny_qwen2: Path, tmp_path: Path) -> None:
    request = ExportRequest(
        base_model=str(tiny_qwen2),
        output_dir=str(tmp_path),
        settings={"quantizations": ["Q4_K_M"], "min_top1": {"Q4_K_M": 1.01}},
    )
    (artifact,) = export_model(request).artifacts
    assert not artifact.passed
    assert artifact.fidelity["min_top1"] == 1.01
    assert not (tmp_path / ".intermediate-F16.gguf").exists()
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("shape", ["qwen2", "mistral", "awkward", "llama3_rope"])
def test_families_pass_the_gates(shape: str, tmp_path: Path) -> None:
    base = build_model(tmp_path / "base", shape)
    request = ExportRequest(
        base_model=str(base),
        output_dir=str(tmp_path / "export"),
        settings={"quantizations": ["F16", "Q8_0"], "fidelity_positions": 192},
    )
    result = run_export(PluginRegistry(), request)
    for artifact in result.artifacts:
        assert artifact.passed, (shape, artifact.quantization, artifact.fidelity)
        assert artifact.fidelity["positions"] == 192
    q8 = result.artifacts[1]
    if shape == "awkward":
        # hidden 80 and ffn 136 are not multiples of 32: llama.cpp keeps those in F16.
        assert q8.fidelity["fallback_tensors"] > 0
        types = {t.name: t.tensor_type for t in gguf.GGUFReader(q8.path).tensors}
        assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    else:
        assert q8.fidelity["fallback_tensors"] == 0


def test_the_gate_catches_a_wrong_rotary_layout(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the q/k permutation the F16 file tokenises right but predicts wrong."""
    import forge_gguf.tensors as tensors
    from forge_gguf.convert import convert
    from forge_gguf.fidelity import FidelityChecker

    monkeypatch.setitem(tensors.ARCHITECTURES, "llama", (gguf.MODEL_ARCH.LLAMA, False))
    wrong = convert(tiny_llama, tmp_path / "unpermuted.gguf").path
    fidelity, passed = FidelityChecker(tiny_llama).check(wrong, "F16")
    assert not passed
    assert fidelity["tokenization_identical"] == 1.0
    assert fidelity["top1_agreement"] < 0.9
    assert fidelity["top1_agreement_near_ties"] < 0.9  # forgiving near-ties hides no real fault


def test_k_quant_falls_back_on_narrow_rows(tiny_llama: Path, tmp_path: Path) -> None:
    """Width 64 is not a multiple of 256: llama.cpp quantises those rows with a 32-block type."""
    request = ExportRequest(
        base_model=str(tiny_llama), output_dir=str(tmp_path), settings={"quantizations": ["Q4_K_M"]}
    )
    (artifact,) = export_model(request).artifacts
    assert artifact.fidelity["fallback_tensors"] > 0, artifact.fidelity
    assert artifact.fidelity["f16_fallback_file"] == 0.0, artifact.fidelity
    types = {t.tensor_type for t in gguf.GGUFReader(artifact.path).tensors}
    assert types & {gguf.GGMLQuantizationType.Q5_0, gguf.GGMLQuantizationType.Q8_0}, types


def test_unknown_quantisation_is_an_error() -> None:
    assert check_quantizations(["q8_0", "Q8_0", "f16"]) == ["Q8_0", "F16"]
    with pytest.raises(ValueError, match="Q3_XYZ"):
        check_quantizations(["Q3_XYZ"])


def test_near_ties_are_forgiven_and_real_misses_are_not() -> None:
    from forge_gguf.fidelity import NEAR_TIE_NATS, compare_logits

    reference = np.log(
        np.array(
            [
                [0.50, 0.49, 0.01],  # near-tie: tokens 0 and 1 within 0.02 nats
                [0.90, 0.05, 0.05],  # decisive
                [0.60, 0.30, 0.10],  # decisive
                [0.70, 0.20, 0.10],  # decisive
            ]
        )
    )
    candidate = reference.copy()
    candidate[0, [0, 1]] = candidate[0, [1, 0]]  # flips the near-tie
    candidate[1, [0, 2]] = candidate[1, [2, 0]]  # a real miss: 0.05 against 0.90
    figures = compare_logits(reference, candidate)
    assert figures["top1_agreement"] == 0.5
    assert figures["top1_agreement_near_ties"] == 0.75
    assert np.log(0.50) - np.log(0.49) < NEAR_TIE_NATS < np.log(0.60) - np.log(0.30)

"""The converter: rotary permutation, metadata llama.cpp needs, tensors, loading in llama.cpp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
llama_cpp = pytest.importorskip("llama_cpp")

from gguf_helpers import CHATML  # noqa: E402

from forge_gguf.convert import convert  # noqa: E402
from forge_gguf.tensors import (  # noqa: E402
    TensorPlan,
    UnsupportedModel,
    architecture,
    permute_rotary,
)


def field_value(reader: gguf.GGUFReader, key: str) -> object:
    """A scalar or string metadata value from a GGUF file."""
    field = reader.fields[key]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return [field.parts[i].tolist() for i in field.data]
    return field.parts[field.data[0]].tolist()[0]


def rope_halves(x: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Hugging Face rotary: dimension i turns with i + d/2."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    cos, sin = np.cos(angles), np.sin(angles)
    return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


def rope_pairs(x: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """llama.cpp's llama rotary: dimensions (2i, 2i+1) turn together."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = np.cos(angles), np.sin(angles)
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
    return out


def test_permutation_turns_hf_rotary_into_llama_cpp_rotary() -> None:
    rng = np.random.default_rng(0)
    heads, head_dim, hidden = 3, 8, 12
    weight = rng.normal(size=(heads * head_dim, hidden))
    x = rng.normal(size=hidden)
    angles = rng.uniform(0, 3, size=head_dim // 2)
    hf = [rope_halves(h, angles) for h in (weight @ x).reshape(heads, head_dim)]
    permuted = permute_rotary(weight, heads)
    cpp = [rope_pairs(h, angles) for h in (permuted @ x).reshape(heads, head_dim)]
    # Per head, the rotated vectors hold the same values in the interleaved order.
    for a, b in zip(hf, cpp, strict=True):
        half = head_dim // 2
        np.testing.assert_allclose(b[0::2], a[:half])
        np.testing.assert_allclose(b[1::2], a[half:])
    # ... so q·k (what attention uses) is unchanged.
    other = rng.normal(size=hidden)
    k_hf = [rope_halves(h, angles) for h in (weight @ other).reshape(heads, head_dim)]
    k_cpp = [rope_pairs(h, angles) for h in (permuted @ other).reshape(heads, head_dim)]
    for qa, ka, qb, kb in zip(hf, k_hf, cpp, k_cpp, strict=True):
        assert qa @ ka == pytest.approx(qb @ kb)


def test_unknown_architecture_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedModel, match="gpt_neox"):
        architecture("gpt_neox")
    assert architecture("qwen2")[1] is False
    assert architecture("mistral")[1] is True


@pytest.fixture(scope="module")
def llama_gguf(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(tiny_llama, tmp_path_factory.mktemp("llama_gguf") / "model-F16.gguf").path


@pytest.fixture(scope="module")
def qwen2_gguf(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(tiny_qwen2, tmp_path_factory.mktemp("qwen2_gguf") / "model-F16.gguf").path


def test_llama_metadata(llama_gguf: Path, tiny_llama: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    reader = gguf.GGUFReader(llama_gguf)
    expected = {
        "general.architecture": "llama",
        "llama.context_length": 1024,
        "llama.embedding_length": 64,
        "llama.block_count": 2,
        "llama.feed_forward_length": 128,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2,
        "llama.rope.dimension_count": 16,
        "llama.vocab_size": config.vocab_size,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.ggml.eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "tokenizer.ggml.padding_token_id": tokenizer.pad_token_id,
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.ggml.add_eos_token": False,
    }
    for key, value in expected.items():
        assert field_value(reader, key) == value, key
    assert field_value(reader, "llama.rope.freq_base") == pytest.approx(10000.0)
    assert field_value(reader, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-6)
    assert "tokenizer.ggml.bos_token_id" not in reader.fields
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == config.vocab_size  # padded rows get placeholder tokens
    types = field_value(reader, "tokenizer.ggml.token_type")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert types[im_end] == [int(gguf.TokenType.CONTROL)]
    assert types[-1] == [int(gguf.TokenType.UNUSED)]
    assert types[100] == [int(gguf.TokenType.NORMAL)]


def test_chat_template_is_preserved(llama_gguf: Path, qwen2_gguf: Path) -> None:
    for path in (llama_gguf, qwen2_gguf):
        reader = gguf.GGUFReader(path)
        assert field_value(reader, "tokenizer.chat_template") == CHATML


def test_tensor_types_and_names(llama_gguf: Path, qwen2_gguf: Path) -> None:
    llama = {t.name: t for t in gguf.GGUFReader(llama_gguf).tensors}
    assert "output.weight" in llama  # untied
    assert llama["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert llama["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert len(llama) == 2 + 1 + 2 * 9
    qwen2 = {t.name: t for t in gguf.GGUFReader(qwen2_gguf).tensors}
    assert "output.weight" not in qwen2  # tied: llama.cpp reuses token_embd
    for bias in ("attn_q.bias", "attn_k.bias", "attn_v.bias"):
        assert qwen2[f"blk.1.{bias}"].tensor_type == gguf.GGMLQuantizationType.F32
    assert field_value(gguf.GGUFReader(qwen2_gguf), "tokenizer.ggml.pre") == "qwen2"


def test_llama_weights_are_permuted_and_qwen2_are_not(
    llama_gguf: Path, qwen2_gguf: Path, tiny_llama: Path, tiny_qwen2: Path
) -> None:
    from safetensors.numpy import load_file

    hf = load_file(tiny_llama / "model.safetensors")
    tensors = {t.name: np.array(t.data) for t in gguf.GGUFReader(llama_gguf).tensors}
    q = hf["model.layers.0.self_attn.q_proj.weight"]
    np.testing.assert_allclose(
        tensors["blk.0.attn_q.weight"], permute_rotary(q, 4).astype(np.float16)
    )
    k = hf["model.layers.0.self_attn.k_proj.weight"]
    np.testing.assert_allclose(
        tensors["blk.0.attn_k.weight"], permute_rotary(k, 2).astype(np.float16)
    )
    qwen = load_file(tiny_qwen2 / "model.safetensors")
    qwen_tensors = {t.name: np.array(t.data) for t in gguf.GGUFReader(qwen2_gguf).tensors}
    np.testing.assert_allclose(
        qwen_tensors["blk.0.attn_q.weight"],
        qwen["model.layers.0.self_attn.q_proj.weight"].astype(np.float16),
    )


@pytest.mark.parametrize("fixture", ["llama_gguf", "qwen2_gguf"])
def test_loads_and_runs_in_llama_cpp(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False)
    try:
        tokens = llm.tokenize(b"def add(a, b):", add_bos=False)
        generated = []
        for token in llm.generate(tokens, top_k=1, temp=0.0):
            generated.append(token)
            if len(generated) == 4:
                break
        assert len(generated) == 4
        assert all(0 <= t < llm.n_vocab() for t in generated)
    finally:
        llm.close()


def test_a_failed_conversion_leaves_no_file(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forge_gguf.convert as module

    original = module.prepare
    calls: list[object] = []

    def failing(plan: TensorPlan, values: np.ndarray) -> np.ndarray:
        calls.append(plan)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(plan, values)

    monkeypatch.setattr(module, "prepare", failing)
    with pytest.raises(OSError, match="disk full"):
        convert(tiny_llama, tmp_path / "out.gguf")
    assert not list(tmp_path.iterdir())

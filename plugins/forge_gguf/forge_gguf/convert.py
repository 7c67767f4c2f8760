"""Forge's own Hugging Face → GGUF converter (llama, mistral and qwen2 families), F16.

Reads a merged model folder (``config.json``, safetensors, tokenizer files) and
writes one GGUF file with the ``gguf`` package's :class:`gguf.GGUFWriter`:
architecture hyper-parameters, the tokenizer (:mod:`forge_gguf.vocab`) and the
tensors (:mod:`forge_gguf.tensors`), 2-D weights in F16 and 1-D ones in F32.
Tensors are streamed one at a time, so memory stays at one tensor, and the file
is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from forge_gguf.tensors import (
    TensorPlan,
    UnsupportedModel,
    architecture,
    plan_tensor,
    prepare,
)
from forge_gguf.vocab import VocabMetadata, read_vocab, write_vocab

logger = logging.getLogger(__name__)


@dataclass
class ConvertReport:
    """What the converter wrote."""

    path: Path
    architecture: str
    n_vocab: int
    n_tensors: int
    vocab: VocabMetadata
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HyperParameters:
    """The architecture numbers llama.cpp reads from ``<arch>.*`` keys."""

    context_length: int
    embedding_length: int
    block_count: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    rope_freq_base: float
    rms_eps: float
    rope: dict[str, Any]
    tied_embeddings: bool


def read_hyper_parameters(config: Any) -> HyperParameters:
    """A transformers config's hyper-parameters (4.x ``rope_scaling``, 5.x ``rope_parameters``)."""
    if getattr(config, "hidden_act", "silu") != "silu":
        raise UnsupportedModel(
            f"hidden_act {config.hidden_act!r}: llama.cpp's llama/qwen2 use silu"
        )
    heads = int(config.num_attention_heads)
    rope = dict(
        getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    )
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return HyperParameters(
        context_length=int(config.max_position_embeddings),
        embedding_length=int(config.hidden_size),
        block_count=int(config.num_hidden_layers),
        feed_forward_length=int(config.intermediate_size),
        head_count=heads,
        head_count_kv=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(head_dim),
        rope_freq_base=float(theta),
        rms_eps=float(config.rms_norm_eps),
        rope=rope,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
    )


def llama3_rope_factors(hp: HyperParameters) -> np.ndarray:
    """Per-frequency divisors for Llama 3.1 rope scaling (llama.cpp's ``rope_freqs.weight``)."""
    rope = hp.rope
    factor = float(rope["factor"])
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    original = float(rope.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / hp.rope_freq_base ** (
        np.arange(0, hp.head_dim, 2, dtype=np.float64) / hp.head_dim
    )
    wavelen = 2 * math.pi / freqs
    smooth = (original / wavelen - low) / (high - low)
    divisors = 1.0 / ((1 - smooth) / factor + smooth)
    divisors = np.where(wavelen < original / high, 1.0, divisors)
    divisors = np.where(wavelen > original / low, factor, divisors)
    return divisors.astype(np.float32)


def write_hyper_parameters(writer: gguf.GGUFWriter, hp: HyperParameters, n_vocab: int) -> None:
    """Add the ``<arch>.*`` keys, rope scaling included."""
    writer.add_context_length(hp.context_length)
    writer.add_embedding_length(hp.embedding_length)
    writer.add_block_count(hp.block_count)
    writer.add_feed_forward_length(hp.feed_forward_length)
    writer.add_head_count(hp.head_count)
    writer.add_head_count_kv(hp.head_count_kv)
    writer.add_rope_freq_base(hp.rope_freq_base)
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_vocab_size(n_vocab)
    writer.add_rope_dimension_count(hp.head_dim)
    if hp.head_dim != hp.embedding_length // hp.head_count:
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    kind = hp.rope.get("rope_type", hp.rope.get("type", "default"))
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(hp.rope["factor"]))
    elif kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(hp.rope["factor"]))
        original = hp.rope.get("original_max_position_embeddings", hp.context_length)
        writer.add_rope_scaling_orig_ctx_len(int(original))
    elif kind not in ("default", "llama3"):
        raise UnsupportedModel(f"rope scaling {kind!r} is not supported by the GGUF exporter")


def safetensors_index(model_dir: Path) -> dict[str, Path]:
    """Tensor name → the safetensors file holding it (single file or sharded index)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text("utf-8"))["weight_map"]
        return {name: model_dir / file for name, file in weight_map.items()}
    single = model_dir / "model.safetensors"
    if not single.is_file():
        raise FileNotFoundError(f"{model_dir} has no model.safetensors(.index.json)")
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as handle:
        return {name: single for name in handle.keys()}  # noqa: SIM118 (not a dict)


class TensorSource:
    """Reads tensors lazily from safetensors files, as float32 numpy arrays."""

    def __init__(self, model_dir: Path, stack: ExitStack) -> None:
        from safetensors import safe_open

        self.files = safetensors_index(model_dir)
        self._handles = {
            path: stack.enter_context(safe_open(str(path), framework="pt"))
            for path in set(self.files.values())
        }

    def names(self) -> list[str]:
        """Every tensor name, in a stable order."""
        return sorted(self.files)

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's shape without loading it."""
        return tuple(self._handles[self.files[name]].get_slice(name).get_shape())

    def load(self, name: str) -> np.ndarray:
        """A tensor's values as float32 (bf16/f16 storage is widened first)."""
        values: np.ndarray = self._handles[self.files[name]].get_tensor(name).float().numpy()
        return values


def plan_tensors(
    source: TensorSource, arch: gguf.MODEL_ARCH, permute: bool, hp: HyperParameters
) -> Iterator[TensorPlan]:
    """The plan for every tensor the GGUF gets (the LM head is left out when tied)."""
    name_map = gguf.get_tensor_name_map(arch, hp.block_count)
    names = source.names()
    if not hp.tied_embeddings and "lm_head.weight" not in names:
        raise UnsupportedModel("config says untied embeddings but lm_head.weight is missing")
    for name in names:
        if hp.tied_embeddings and name == "lm_head.weight":
            continue
        plan = plan_tensor(
            name,
            source.shape(name),
            name_map,
            permute=permute,
            n_head=hp.head_count,
            n_head_kv=hp.head_count_kv,
        )
        if plan is not None:
            yield plan


def convert(
    model_dir: Path,
    output: Path,
    *,
    name: str = "forge",
    pre_tokenizer: str | None = None,
) -> ConvertReport:
    """Write ``model_dir`` (a Hugging Face model folder) as an F16 GGUF at ``output``."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    arch, permute = architecture(config.model_type)
    hp = read_hyper_parameters(config)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    notes: list[str] = []
    sliding = getattr(config, "sliding_window", None)
    if sliding and getattr(config, "use_sliding_window", True) and sliding < hp.context_length:
        notes.append(f"sliding window {sliding} is not applied by llama.cpp's {arch.name.lower()}")

    partial = output.with_name(output.name + ".partial")
    with ExitStack() as stack:
        source = TensorSource(model_dir, stack)
        plans = list(plan_tensors(source, arch, permute, hp))
        embed = next(p for p in plans if p.gguf_name == "token_embd.weight")
        n_vocab = embed.shape[0]
        vocab = read_vocab(tokenizer, n_vocab, pre_override=pre_tokenizer)
        notes.extend(vocab.notes)

        writer = gguf.GGUFWriter(None, gguf.MODEL_ARCH_NAMES[arch])
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        write_hyper_parameters(writer, hp, n_vocab)
        write_vocab(writer, vocab)
        extra: dict[str, np.ndarray] = {}
        if hp.rope.get("rope_type") == "llama3":
            extra[gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"] = (
                llama3_rope_factors(hp)
            )
        for tensor_name, values in extra.items():
            writer.add_tensor_info(tensor_name, values.shape, values.dtype, values.nbytes)
        for plan in plans:
            writer.add_tensor_info(plan.gguf_name, plan.shape, np.dtype(plan.dtype), plan.nbytes)
        try:
            writer.write_header_to_file(partial)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for values in extra.values():
                writer.write_tensor_data(values)
            for plan in plans:
                writer.write_tensor_data(prepare(plan, source.load(plan.hf_name)))
            writer.close()
        except BaseException:
            writer.close()
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, output)
    logger.info("wrote %s (%d tensors)", output, len(plans) + len(extra))
    return ConvertReport(
        path=output,
        architecture=gguf.MODEL_ARCH_NAMES[arch],
        n_vocab=n_vocab,
        n_tensors=len(plans) + len(extra),
        vocab=vocab,
        notes=notes,
    )

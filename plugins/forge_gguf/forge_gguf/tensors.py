"""Hugging Face tensors → GGUF tensors: names, rotary layout, storage type.

Names come from the ``gguf`` package's :class:`gguf.TensorNameMap` for the
architecture (``model.layers.3.self_attn.q_proj.weight`` → ``blk.3.attn_q.weight``).

The one transformation is the rotary layout. Hugging Face Llama rotates each
head's dimension ``i`` with ``i + d/2`` (two halves); llama.cpp's ``llama``
architecture rotates adjacent pairs ``(2i, 2i+1)``. So the rows of every head in
``q_proj`` and ``k_proj`` are interleaved: GGUF row ``2i`` is HF row ``i`` and
GGUF row ``2i+1`` is HF row ``i + d/2``. Qwen2 runs llama.cpp's NeoX rotary
(halves, like Hugging Face), so its weights go through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf
import numpy as np

#: Hugging Face ``model_type`` → (GGUF architecture, whether q/k rows are permuted).
ARCHITECTURES: dict[str, tuple[gguf.MODEL_ARCH, bool]] = {
    "llama": (gguf.MODEL_ARCH.LLAMA, True),
    "mistral": (gguf.MODEL_ARCH.LLAMA, True),
    "qwen2": (gguf.MODEL_ARCH.QWEN2, False),
}

#: Hugging Face tensors that carry no weights llama.cpp needs.
SKIPPED_SUFFIXES = (".rotary_emb.inv_freq",)


class UnsupportedModel(ValueError):
    """The model's architecture or tensors cannot be written by this converter."""


@dataclass(frozen=True)
class TensorPlan:
    """How one Hugging Face tensor is written."""

    hf_name: str
    gguf_name: str
    shape: tuple[int, ...]
    permute_heads: int | None
    dtype: type[np.floating]

    @property
    def nbytes(self) -> int:
        """The size of the tensor as written."""
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


def architecture(model_type: str) -> tuple[gguf.MODEL_ARCH, bool]:
    """The GGUF architecture for a Hugging Face ``model_type``, and whether to permute q/k."""
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise UnsupportedModel(
            f"model_type {model_type!r} is not supported by the GGUF exporter (known: {known})"
        ) from None


def permute_rotary(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder each head's rows from HF's half-split rotary layout to GGUF's interleaved one."""
    rows = weights.shape[0]
    if rows % (2 * n_head):
        raise UnsupportedModel(f"{rows} rows do not split into {n_head} heads of even size")
    half = rows // n_head // 2
    return (
        weights.reshape(n_head, 2, half, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)
    )


def plan_tensor(
    hf_name: str,
    shape: tuple[int, ...],
    name_map: gguf.TensorNameMap,
    *,
    permute: bool,
    n_head: int,
    n_head_kv: int,
) -> TensorPlan | None:
    """Where ``hf_name`` goes in the GGUF, or None for a tensor llama.cpp does not use."""
    if hf_name.endswith(SKIPPED_SUFFIXES):
        return None
    gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if gguf_name is None:
        raise UnsupportedModel(f"no GGUF name for tensor {hf_name!r}")
    heads: int | None = None
    if permute and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
        heads = n_head
    elif permute and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
        heads = n_head_kv
    # 1-D tensors (norms, biases) stay F32: llama.cpp adds them in F32 anyway.
    dtype = np.float32 if len(shape) == 1 else np.float16
    return TensorPlan(hf_name, gguf_name, shape, heads, dtype)


def prepare(plan: TensorPlan, values: np.ndarray) -> np.ndarray:
    """The tensor's data as written: permuted if needed, in the planned type, contiguous."""
    data = values.astype(np.float32, copy=False)
    if plan.permute_heads is not None:
        data = permute_rotary(data, plan.permute_heads)
    return np.ascontiguousarray(data.astype(plan.dtype))

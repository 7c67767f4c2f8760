"""Peak-memory estimates for adapter training, and the settings that fit a device.

The estimate adds, in bytes:

* base weights: 2 per parameter in bf16/fp16 (CUDA), 4 in fp32 (CPU and MPS,
  where the trainer runs fp32), about 0.56 for 4-bit NF4 with double
  quantisation (CUDA only; embeddings and the output head stay 16-bit);
* the adapter: its parameters in fp32 plus gradients and two AdamW moments
  (16 bytes per adapter parameter);
* activations kept for the backward pass, per layer and token, in the compute
  dtype: about ``10·h + 4·i`` values for a Llama-style block (inputs of the
  norms, q/k/v/o projections, attention output, the gate/up/down MLP
  tensors; memory-efficient attention keeps no seq² matrix). With gradient
  checkpointing only each layer's input (``h`` values) is kept, plus one
  layer's full activations while it is recomputed;
* the logits and their gradient in fp32 (``2 · seq · vocab · 4``);
* a fixed allowance for the CUDA context / allocator slack.

It is checked against measured peaks (``tests/plugins/forge_torch/test_torch_plan.py``
on tiny models; ``bench/training.py`` on a GPU).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 2**30
#: Share of memory a device lets training use: CUDA keeps a little for the context;
#: macOS lets the GPU wire about three quarters of unified memory.
USABLE_FRACTION = {"cuda": 0.92, "mps": 0.78, "cpu": 0.8}


@dataclass(frozen=True)
class ModelShape:
    """The dimensions that decide training memory."""

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int

    @property
    def parameters(self) -> int:
        """Parameter count of a Llama-style decoder (untied embeddings and head)."""
        head_dim = self.hidden // self.heads
        attention = self.hidden * head_dim * (2 * self.heads + 2 * self.kv_heads)
        mlp = 3 * self.hidden * self.intermediate
        blocks = self.layers * (attention + mlp + 2 * self.hidden)
        return blocks + 2 * self.vocab * self.hidden + self.hidden  # + the final norm

    def lora_parameters(self, rank: int) -> int:
        """Parameters of a rank-``rank`` adapter on every linear layer of every block."""
        head_dim = self.hidden // self.heads
        kv = self.kv_heads * head_dim
        shapes = [
            (self.hidden, self.hidden),
            (self.hidden, kv),
            (self.hidden, kv),
            (self.hidden, self.hidden),
            (self.hidden, self.intermediate),
            (self.hidden, self.intermediate),
            (self.intermediate, self.hidden),
        ]
        return self.layers * sum(rank * (a + b) for a, b in shapes)


#: Shapes of well-known sizes (Llama/Qwen-style), for planning without a config file.
KNOWN_SHAPES = {
    "1.5b": ModelShape("1.5b", 1536, 8960, 28, 12, 2, 151_936),
    "3b": ModelShape("3b", 3072, 8192, 28, 24, 8, 128_256),
    "7b": ModelShape("7b", 4096, 11008, 32, 32, 32, 32_000),
    "13b": ModelShape("13b", 5120, 13824, 40, 40, 40, 32_000),
}


def shape_from_config(path: Path) -> ModelShape:
    """Read a Hugging Face ``config.json`` (a file or a model folder)."""
    config_file = path / "config.json" if path.is_dir() else path
    data = json.loads(config_file.read_text(encoding="utf-8"))
    return shape_from_dict(data, path.name)


def shape_from_dict(data: dict[str, Any], name: str = "model") -> ModelShape:
    """The shape in a Hugging Face config's fields (``KeyError`` when one is missing)."""
    return ModelShape(
        name=str(data.get("_name_or_path") or name),
        hidden=int(data["hidden_size"]),
        intermediate=int(data["intermediate_size"]),
        layers=int(data["num_hidden_layers"]),
        heads=int(data["num_attention_heads"]),
        kv_heads=int(data.get("num_key_value_heads") or data["num_attention_heads"]),
        vocab=int(data["vocab_size"]),
    )


@dataclass(frozen=True)
class Estimate:
    """A peak-memory estimate, by component, in bytes."""

    weights: float
    adapter: float
    activations: float
    logits: float
    overhead: float

    @property
    def total(self) -> float:
        """The estimated peak."""
        return self.weights + self.adapter + self.activations + self.logits + self.overhead


def estimate(
    shape: ModelShape,
    *,
    seq_len: int,
    batch: int,
    rank: int = 16,
    quantize_4bit: bool = False,
    gradient_checkpointing: bool = False,
    weight_bytes: float = 2.0,
    overhead: float = 0.5 * GIB,
) -> Estimate:
    """Estimate peak training memory (see the module docstring)."""
    embed = 2 * shape.vocab * shape.hidden
    if quantize_4bit:
        weights = (shape.parameters - embed) * 0.56 + embed * 2.0
        act_bytes = 2.0
    else:
        weights = shape.parameters * weight_bytes
        act_bytes = weight_bytes
    adapter = shape.lora_parameters(rank) * 16.0
    tokens = seq_len * batch
    per_layer_token = (10 * shape.hidden + 4 * shape.intermediate) * act_bytes
    if gradient_checkpointing:
        activations = tokens * (shape.layers * shape.hidden * act_bytes + per_layer_token)
    else:
        activations = tokens * shape.layers * per_layer_token
    logits = 2.0 * tokens * shape.vocab * 4.0
    return Estimate(weights, adapter, activations, logits, overhead)


def needs_checkpointing(
    shape: ModelShape,
    memory_bytes: float,
    *,
    seq_len: int,
    batch: int,
    rank: int,
    quantize_4bit: bool,
    weight_bytes: float,
    usable_fraction: float,
) -> bool:
    """True when the estimate without gradient checkpointing does not fit the memory."""
    guess = estimate(
        shape,
        seq_len=seq_len,
        batch=batch,
        rank=rank,
        quantize_4bit=quantize_4bit,
        gradient_checkpointing=False,
        weight_bytes=weight_bytes,
    )
    return guess.total > memory_bytes * usable_fraction


def device_memory_bytes(kind: str) -> float:
    """Memory training can have on a device kind: for CUDA what is free plus what this
    process already holds (the loaded weights); for MPS and CPU the system's RAM."""
    if kind == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return float(free + torch.cuda.memory_reserved())
    if kind == "mps" or platform.system() == "Darwin":
        out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True)
        return float(out.stdout.strip() or 0)
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@dataclass(frozen=True)
class Plan:
    """Settings that fit, with the estimate they give."""

    quantize_4bit: bool
    gradient_checkpointing: bool
    batch_size: int
    estimate: Estimate
    fits: bool
    weight_bytes: float = 2.0

    @property
    def label(self) -> str:
        """A short description such as ``4-bit + gradient checkpointing, batch 2``."""
        parts = ["4-bit" if self.quantize_4bit else precision_name(self.weight_bytes)]
        if self.gradient_checkpointing:
            parts.append("gradient checkpointing")
        else:
            parts.append("full speed")
        return f"{' + '.join(parts)}, batch {self.batch_size}"


def precision_name(weight_bytes: float) -> str:
    """``16-bit`` for 2 bytes a weight, ``fp32`` for 4."""
    return "fp32" if weight_bytes >= 4 else "16-bit"


def device_weight_bytes(kind: str) -> float:
    """Bytes a base weight takes where the trainer runs: bf16 on CUDA, fp32 on CPU/MPS
    (``forge_torch.model.pick_placement``)."""
    return 2.0 if kind == "cuda" else 4.0


def choose(
    shape: ModelShape,
    memory_bytes: float,
    *,
    seq_len: int,
    rank: int = 16,
    allow_4bit: bool = True,
    prefer_4bit: bool = False,
    weight_bytes: float = 2.0,
    usable_fraction: float = 0.9,
    max_batch: int = 16,
) -> Plan:
    """The fastest settings that fit, then the largest batch (up to ``max_batch``).

    Order: full precision (``weight_bytes`` a weight) before 4-bit (unless
    ``prefer_4bit``), and no checkpointing before checkpointing. 4-bit needs
    CUDA (bitsandbytes): ``forge plan`` allows it only there.
    """
    budget = memory_bytes * usable_fraction
    sixteen = [(False, False), (False, True)]
    four = [(True, False), (True, True)] if allow_4bit else []
    options = four + sixteen if prefer_4bit else sixteen + four
    for quantize_4bit, checkpointing in options:
        best: Plan | None = None
        for batch in range(1, max_batch + 1):
            guess = estimate(
                shape,
                seq_len=seq_len,
                batch=batch,
                rank=rank,
                quantize_4bit=quantize_4bit,
                gradient_checkpointing=checkpointing,
                weight_bytes=weight_bytes,
            )
            if guess.total > budget:
                break
            best = Plan(quantize_4bit, checkpointing, batch, guess, True, weight_bytes)
        if best is not None:
            return best
    fallback = estimate(
        shape,
        seq_len=seq_len,
        batch=1,
        rank=rank,
        quantize_4bit=allow_4bit,
        gradient_checkpointing=True,
        weight_bytes=weight_bytes,
    )
    return Plan(allow_4bit, True, 1, fallback, False, weight_bytes)

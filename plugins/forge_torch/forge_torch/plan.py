"""Peak-memory estimates for adapter training, and the settings that fit a device.

The estimate adds, in bytes:

* base weights: 2 per parameter in bf16/fp16, 4 in fp32, about 0.56 for 4-bit
  NF4 with double quantisation (embeddings and the output head stay 16-bit);
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

It is checked against measured peaks (``tests/plugins/forge_torch/test_plan.py``
on tiny models; ``bench/training.py`` on a GPU).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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
    return ModelShape(
        name=str(data.get("_name_or_path") or path.name),
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


@dataclass(frozen=True)
class Plan:
    """Settings that fit, with the estimate they give."""

    quantize_4bit: bool
    gradient_checkpointing: bool
    batch_size: int
    estimate: Estimate
    fits: bool

    @property
    def label(self) -> str:
        """A short description such as ``4-bit + gradient checkpointing, batch 2``."""
        parts = ["4-bit" if self.quantize_4bit else "16-bit"]
        if self.gradient_checkpointing:
            parts.append("gradient checkpointing")
        else:
            parts.append("full speed")
        return f"{' + '.join(parts)}, batch {self.batch_size}"


def choose(
    shape: ModelShape,
    memory_bytes: float,
    *,
    seq_len: int,
    rank: int = 16,
    allow_4bit: bool = True,
    prefer_4bit: bool = False,
    usable_fraction: float = 0.9,
    max_batch: int = 16,
) -> Plan:
    """The fastest settings that fit, then the largest batch (up to ``max_batch``).

    Order: 16-bit before 4-bit (unless ``prefer_4bit``, as on Apple silicon
    where 4-bit bases are the norm), and no checkpointing before checkpointing.
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
            )
            if guess.total > budget:
                break
            best = Plan(quantize_4bit, checkpointing, batch, guess, True)
        if best is not None:
            return best
    fallback = estimate(
        shape,
        seq_len=seq_len,
        batch=1,
        rank=rank,
        quantize_4bit=allow_4bit,
        gradient_checkpointing=True,
    )
    return Plan(allow_4bit, True, 1, fallback, False)

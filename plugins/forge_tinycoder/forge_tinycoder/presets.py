"""Size presets: the same script trains a tiny smoke model, the CPU model, or a GPU one.

``small`` is the shipped model (trained on 2 CPU threads in about an hour and a half);
``medium`` is the largest that still fits the 25 MB budget in bf16 (a GPU run of a
few minutes); ``large`` is for a GPU and does not fit in git.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    """Model shape and training settings of one size."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    seq_len: int
    batch_rows: int
    learning_rate: float
    tokenizer_chars_per_language: int
    max_tokens_per_language: int
    raft_files_per_language: int
    instruct_share: float = 1 / 6
    context_length: int = 1024
    short_seq_len: int | None = None
    """Pretraining windows this long for the first ``short_share`` of the schedule (same
    tokens per step): attention costs less, and the rest at ``seq_len`` teaches long context."""
    short_share: float = 0.0
    compile: bool = False
    """``torch.compile`` the pretraining step."""

    def as_json(self) -> dict[str, Any]:
        """The preset as a JSON object (saved beside the model)."""
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        hidden=64,
        layers=2,
        heads=2,
        intermediate=176,
        vocab=1024,
        seq_len=256,
        batch_rows=4,
        learning_rate=3e-3,
        tokenizer_chars_per_language=1_000_000,
        max_tokens_per_language=200_000,
        raft_files_per_language=15,
    ),
    "small": Preset(
        hidden=192,
        layers=6,
        heads=3,
        intermediate=512,
        vocab=8192,
        seq_len=1024,
        batch_rows=4,
        learning_rate=2e-3,
        tokenizer_chars_per_language=8_000_000,
        max_tokens_per_language=16_000_000,
        raft_files_per_language=300,
        short_seq_len=256,
        short_share=0.7,
        compile=True,
    ),
    "medium": Preset(
        hidden=320,
        layers=8,
        heads=5,
        intermediate=768,
        vocab=8192,
        seq_len=1024,
        batch_rows=32,
        learning_rate=1.5e-3,
        tokenizer_chars_per_language=16_000_000,
        max_tokens_per_language=60_000_000,
        raft_files_per_language=400,
        instruct_share=0.1,
    ),
    "large": Preset(
        hidden=512,
        layers=12,
        heads=8,
        intermediate=1376,
        vocab=16384,
        seq_len=1024,
        batch_rows=32,
        learning_rate=1e-3,
        tokenizer_chars_per_language=24_000_000,
        max_tokens_per_language=100_000_000,
        raft_files_per_language=600,
        instruct_share=0.1,
    ),
}


def build_model(preset: Preset, special_ids: dict[str, int]) -> Any:
    """A freshly initialised Llama model of the preset's shape."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=preset.vocab,
        hidden_size=preset.hidden,
        intermediate_size=preset.intermediate,
        num_hidden_layers=preset.layers,
        num_attention_heads=preset.heads,
        num_key_value_heads=preset.heads,
        max_position_embeddings=preset.context_length,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000.0},
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=special_ids["eos"],
        pad_token_id=special_ids["pad"],
    )
    return LlamaForCausalLM(config)

"""Tiny models built from configs in code, a tokenizer trained in the test, RAFT-shaped data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "What does add do? It returns the sum of a and b.",
    "##begin_quote##return a + b##end_quote## <ANSWER>: the sum",
    "function cartTotal(lines) { return lines.reduce((s, l) => s + l.price, 0); }",
    "func (l *Ledger) Deposit(sku string, quantity int) int { return 0 }",
]


def build_tokenizer(folder: Path) -> None:
    """Train a tiny byte-level BPE with ChatML special tokens and save it with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    fast.chat_template = CHATML
    fast.save_pretrained(folder)


def build_model(folder: Path, family: str = "llama", hidden: int = 64) -> Path:
    """A tiny randomly initialised Llama or Qwen2 with the test tokenizer."""
    import torch
    from transformers import (
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    build_tokenizer(folder)
    vocab = len(AutoTokenizer.from_pretrained(folder))
    torch.manual_seed(0)
    shape = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        initializer_range=0.3,
    )
    if family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**shape))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape))
    model.save_pretrained(folder)
    return folder


def write_examples(path: Path, count: int, offset: int = 0) -> Path:
    """RAFT-shaped chat examples of varying length."""
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(offset, offset + count):
            context = "def add(a, b):\n    return a + b\n" * (1 + index % 4)
            messages = [
                {"role": "system", "content": "Answer from the documents."},
                {"role": "user", "content": f"{context}\nWhat does add number {index} do?"},
                {
                    "role": "assistant",
                    "content": "##begin_quote##return a + b##end_quote## "
                    f"<ANSWER>: sum {index % 7}",
                },
            ]
            handle.write(json.dumps({"messages": messages}) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny_llama"), "llama")


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny_qwen2"), "qwen2")


@pytest.fixture
def splits(tmp_path: Path) -> tuple[Path, Path]:
    return write_examples(tmp_path / "train.jsonl", 48), write_examples(
        tmp_path / "valid.jsonl", 8, 100
    )

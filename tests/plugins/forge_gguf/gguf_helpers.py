"""Tiny models and tokenizers built in code for the GGUF export tests (nothing is downloaded).

A plain module with a unique name (not a conftest): the test modules import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Qwen2's pre-tokenizer regex (its tokenizer.json Split pattern).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "class Ledger:\n    def __init__(self) -> None:\n        self.items = []\n",
    "What does add do? It returns the sum of a and b.",
    "##begin_quote##return a + b##end_quote## <ANSWER>: the sum",
    "function cartTotal(lines) { return lines.reduce((s, l) => s + l.price, 0); }",
    "func (l *Ledger) Deposit(sku string, quantity int) int {\n\treturn 0\n}\n",
    "naïve café 中文 🙂    spaced\t\ttabs\n\n\n",
]

#: Model shapes used by the tests: (family, hidden, intermediate, extra config).
SHAPES: dict[str, dict[str, Any]] = {
    "llama": {"family": "llama", "hidden": 64, "intermediate": 128},
    "qwen2": {"family": "qwen2", "hidden": 64, "intermediate": 128, "tie": True},
    "mistral": {"family": "mistral", "hidden": 64, "intermediate": 128, "head_dim": 32},
    "awkward": {"family": "llama", "hidden": 80, "intermediate": 136},
    "llama3_rope": {
        "family": "llama",
        "hidden": 64,
        "intermediate": 128,
        "rope": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
            "rope_theta": 10000.0,
        },
    },
}


def build_tokenizer(folder: Path, style: str = "gpt2", vocab_size: int = 400) -> Any:
    """Train a tiny byte-level BPE with ChatML special tokens and save it with the template.

    ``gpt2``: a bare ``ByteLevel`` pre-tokenizer (GPT-2 regex), like tinycoder's.
    ``qwen2``: Qwen2's shape — NFC normaliser, Qwen2 ``Split`` regex, ``ByteLevel`` without regex.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    if style == "qwen2":
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML
    fast.save_pretrained(folder)
    return fast


#: Scale of the decoder blocks' initial weights relative to ``initializer_range``.
BLOCK_SCALE = 0.2
#: Optimiser steps :func:`fit` takes (AdamW, lr 1e-2, 128-token windows).
TRAIN_STEPS = 40


def build_model(folder: Path, shape: str = "llama", seed: int = 0) -> Path:
    """A tiny model of one of :data:`SHAPES` with its tokenizer, briefly trained on code.

    Embeddings and LM head use ``initializer_range=0.3`` so next-token distributions
    are peaked, not flat; the decoder blocks start at a fifth of that. A purely
    random network with every weight at 0.3 is chaotic and full of near-ties:
    rounding its weights to Q8_0 in transformers alone flips ~8% of its top-1
    predictions (measured), which no trained model does (tinycoder: Q8_0 top-1
    agreement 1.0). :data:`TRAIN_STEPS` optimiser steps on the corpus and the
    fidelity check's held-out code make it confident the way trained models are,
    in a few seconds. An un-permuted q/k still drops its F16 top-1 agreement to
    about 0.5, so the gates keep their power (``test_gguf_export`` checks that).
    """
    import torch
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    spec = SHAPES[shape]
    family = spec["family"]
    tokenizer = build_tokenizer(folder, "qwen2" if family == "qwen2" else "gpt2")
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = dict(
        vocab_size=len(tokenizer) + 8,  # padded embedding rows, like real models
        hidden_size=spec["hidden"],
        intermediate_size=spec["intermediate"],
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=spec.get("tie", False),
        initializer_range=0.3,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    if "head_dim" in spec:
        kwargs["head_dim"] = spec["head_dim"]
    if "rope" in spec:
        kwargs["rope_parameters"] = spec["rope"]
    config_class, model_class = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM),
    }[family]
    model = model_class(config_class(**kwargs))
    with torch.no_grad():
        for parameter in model.model.layers.parameters():
            if parameter.dim() == 2:
                parameter.mul_(BLOCK_SCALE)
    if TRAIN_STEPS:
        fit(model, tokenizer, TRAIN_STEPS)
    model.save_pretrained(folder)
    return folder


def fit(model: Any, tokenizer: Any, steps: int) -> None:
    """A few optimiser steps on code, so predictions are confident like a trained model's."""
    import torch

    from forge_gguf.fidelity import builtin_samples

    texts = [*CORPUS, *builtin_samples()["held_out_code"]]
    ids = tokenizer("\n\n".join(texts), add_special_tokens=False)["input_ids"]
    batch = torch.tensor([ids[i : i + 128] for i in range(0, len(ids) - 128, 64)])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    # One thread: on a busy 2-core CI machine two intra-op threads wait on each
    # other and these tiny steps run ~10x slower (measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    try:
        for _ in range(steps):
            loss = model(batch, labels=batch).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    finally:
        torch.set_num_threads(threads)
        model.eval()


def save_trained_adapter(base: Path, folder: Path, seed: int = 1) -> Path:
    """A LoRA adapter fine-tuned for a few steps (so merging changes the weights), + tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"],
    )
    peft_model = get_peft_model(model, config)
    fit(peft_model, tokenizer, 20)
    peft_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

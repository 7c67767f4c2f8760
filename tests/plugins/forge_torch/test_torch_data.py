"""Tokenisation masks, packing without cross-contamination."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from forge_torch.data import IGNORE_INDEX, TokenizedExample, collate, pack, tokenize_conversation

MESSAGES = [
    {"role": "system", "content": "Answer from the documents."},
    {"role": "user", "content": "What does add do?"},
    {"role": "assistant", "content": "It returns a + b. <ANSWER>: the sum"},
]


def test_loss_only_on_assistant_tokens(tiny_llama: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    example = tokenize_conversation(tokenizer, MESSAGES)
    labelled = [
        t
        for t, label in zip(example.input_ids, example.labels, strict=True)
        if label != IGNORE_INDEX
    ]
    assert tokenizer.decode(labelled) == "It returns a + b. <ANSWER>: the sum<|im_end|>\n"
    prompt_len = example.labels.index(
        next(label for label in example.labels if label != IGNORE_INDEX)
    )
    prompt = tokenizer.decode(example.input_ids[:prompt_len])
    assert prompt.endswith("<|im_start|>assistant\n") and "What does add do?" in prompt
    assert all(label == IGNORE_INDEX for label in example.labels[:prompt_len])
    full = tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert tokenizer.decode(example.input_ids) == full


def test_pack_first_fit_decreasing() -> None:
    examples = [TokenizedExample([1] * n, [1] * n) for n in (6, 5, 4, 3, 2)]
    rows = pack(examples, capacity=10)
    assert sorted(sorted(r) for r in rows) == [[0, 2], [1, 3, 4]]
    assert all(sum(len(examples[i]) for i in row) <= 10 for row in rows)


def test_packing_never_lets_one_example_attend_to_another(
    tiny_llama: Path, tiny_qwen2: Path
) -> None:
    for folder in (tiny_llama, tiny_qwen2):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()
        first = tokenize_conversation(tokenizer, MESSAGES)
        second = tokenize_conversation(
            tokenizer,
            [
                *MESSAGES[:1],
                {"role": "user", "content": "Other?"},
                {"role": "assistant", "content": "<ANSWER>: no"},
            ],
        )
        batch = collate([first, second], [[0, 1]], tokenizer.pad_token_id, torch.float32)
        assert batch.real_tokens == len(first) + len(second)
        assert batch.label_tokens == sum(
            label != IGNORE_INDEX for label in first.labels + second.labels
        )
        with torch.no_grad():
            packed = model(
                input_ids=batch.input_ids,
                position_ids=batch.position_ids,
                attention_mask=batch.attention_mask,
            ).logits[0]
            alone_first = model(input_ids=torch.tensor([first.input_ids])).logits[0]
            alone_second = model(input_ids=torch.tensor([second.input_ids])).logits[0]
        assert torch.allclose(packed[: len(first)], alone_first, atol=1e-5)
        assert torch.allclose(packed[len(first) :], alone_second, atol=1e-5)
        # Changing the first example must not change the second's logits at all.
        changed = collate(
            [TokenizedExample([5] * len(first), first.labels), second],
            [[0, 1]],
            tokenizer.pad_token_id,
            torch.float32,
        )
        with torch.no_grad():
            other = model(
                input_ids=changed.input_ids,
                position_ids=changed.position_ids,
                attention_mask=changed.attention_mask,
            ).logits[0]
        assert torch.equal(other[len(first) :], packed[len(first) :])


def test_padded_rows_do_not_change_real_tokens(tiny_llama: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    long = tokenize_conversation(tokenizer, MESSAGES)
    short = TokenizedExample(long.input_ids[:5], long.labels[:5])
    batch = collate([long, short], [[0], [1]], tokenizer.pad_token_id, torch.float32)
    with torch.no_grad():
        logits = model(
            input_ids=batch.input_ids,
            position_ids=batch.position_ids,
            attention_mask=batch.attention_mask,
        ).logits
        alone = model(input_ids=torch.tensor([short.input_ids])).logits[0]
    assert torch.allclose(logits[1, :5], alone, atol=1e-5)


def test_a_split_can_be_sampled_reproducibly(tiny_llama: Path, tmp_path: Path) -> None:
    from forge_torch.data import tokenize_file
    from tests.plugins.forge_torch.conftest import write_examples

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    path = write_examples(tmp_path / "valid.jsonl", 40)
    everything, _ = tokenize_file(tokenizer, path, 4096)
    sample, _ = tokenize_file(tokenizer, path, 4096, sample=10, seed=3)
    again, _ = tokenize_file(tokenizer, path, 4096, sample=10, seed=3)
    other, _ = tokenize_file(tokenizer, path, 4096, sample=10, seed=4)
    assert len(everything) == 40 and len(sample) == 10
    assert sample == again and sample != other  # fixed by the seed
    positions = [everything.index(example) for example in sample]
    assert positions == sorted(positions)  # a subset, in file order
    assert tokenize_file(tokenizer, path, 4096, sample=100)[0] == everything


def test_core_template_rendering_and_overhead_match_the_trainer(
    tiny_llama: Path, tiny_qwen2: Path
) -> None:
    """forge_core counts what the trainer will count, without loading transformers."""
    from forge_core.chat_template import load_chat_template
    from forge_core.validation import token_counter

    for model in (tiny_llama, tiny_qwen2):
        tokenizer = AutoTokenizer.from_pretrained(model)
        template = load_chat_template(model)
        assert template is not None
        assert template.render(MESSAGES) == tokenizer.apply_chat_template(MESSAGES, tokenize=False)
        count, _ = token_counter(model / "tokenizer.json")
        overhead = template.overhead([m["role"] for m in MESSAGES], count)
        content = sum(count(m["content"]) for m in MESSAGES)
        assert content + overhead == len(tokenize_conversation(tokenizer, MESSAGES))

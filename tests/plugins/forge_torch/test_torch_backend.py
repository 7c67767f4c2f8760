"""The torch model backend: generation stays within the model's context."""

from __future__ import annotations

import shutil
from pathlib import Path

from forge_core.contracts import ChatMessage


def gpt2_with_short_context(folder: Path, tokenizer_from: Path, positions: int) -> Path:
    """A tiny GPT-2: learned position embeddings, so a position past the context fails."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tokenizer_from / name).exists():
            shutil.copy(tokenizer_from / name, folder / name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=positions,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def conversation(words: int) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content="Answer from the documents."),
        ChatMessage(role="user", content=" ".join(["add"] * words) + "\nWhat does add do?"),
    ]


def test_generation_stops_at_the_models_context(tmp_path: Path, tiny_llama: Path) -> None:
    from forge_torch.backend import TorchBackend

    model = gpt2_with_short_context(tmp_path, tiny_llama, 64)
    backend = TorchBackend(str(model), None, {"device": "cpu"})
    conversations = [conversation(4), conversation(10)]
    tokenizer = backend.tokenizer
    prompts = [
        tokenizer.apply_chat_template(backend._plain(c), tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    prompt_tokens = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    assert 40 < prompt_tokens < 64
    # 200 new tokens would take positions past 64, where GPT-2 has no embedding.
    answers = backend.generate(conversations, max_new_tokens=200)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert backend.new_token_room(prompt_tokens, 200) == 64 - prompt_tokens
    assert backend.new_token_room(20, 5) == 5
    # A prompt that fills the context leaves no room: an empty answer, not an error.
    assert backend.generate([conversation(60)], max_new_tokens=8) == [""]


def test_prompts_are_batched_by_length_and_answers_keep_their_order(
    tmp_path: Path, tiny_llama: Path
) -> None:
    """A short prompt is not batched with a long one, whose length would cap its answer."""
    import torch

    from forge_torch.backend import TorchBackend

    model = gpt2_with_short_context(tmp_path, tiny_llama, 128)
    backend = TorchBackend(str(model), None, {"device": "cpu", "batch_size": 2})
    tokenizer = backend.tokenizer
    calls: list[tuple[list[int], int]] = []

    def answer_with_prompt_length(
        input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int, **_: object
    ) -> torch.Tensor:
        """Each row answers with its own prompt length, so the test can tell rows apart."""
        lengths = attention_mask.sum(dim=1).tolist()
        calls.append((lengths, max_new_tokens))
        answers = [tokenizer(str(n), add_special_tokens=False)["input_ids"] for n in lengths]
        width = max(map(len, answers))
        padded = [a + [tokenizer.eos_token_id] * (width - len(a)) for a in answers]
        return torch.cat([input_ids, torch.tensor(padded)], dim=1)

    backend.model.generate = answer_with_prompt_length  # type: ignore[method-assign]
    conversations = [conversation(2), conversation(70), conversation(3), conversation(68)]
    prompt_lengths = [
        len(
            tokenizer(
                tokenizer.apply_chat_template(
                    backend._plain(c), tokenize=False, add_generation_prompt=True
                ),
                add_special_tokens=False,
            )["input_ids"]
        )
        for c in conversations
    ]
    assert 128 - max(prompt_lengths) < 10 < 128 - max(prompt_lengths[0], prompt_lengths[2])

    answers = backend.generate(conversations, max_new_tokens=10)

    assert answers == [str(n) for n in prompt_lengths]  # in the caller's order
    # Two batches: the two long prompts (their room is what the context leaves), then
    # the two short ones with every new token they asked for.
    assert [sorted(lengths) for lengths, _ in calls] == [
        sorted(prompt_lengths[1::2]),
        sorted(prompt_lengths[0::2]),
    ]
    assert calls[0][1] == 128 - max(prompt_lengths) and calls[1][1] == 10

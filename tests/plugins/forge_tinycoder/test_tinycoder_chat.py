"""The chat format: own special tokens, renders and parses back, the prompt is a prefix."""

from __future__ import annotations

import json

import pytest

from forge_tinycoder.plugin import MODEL_DIR
from forge_tinycoder.tokenizer import END_OF_TURN, ROLE_TOKENS, parse_chat

transformers = pytest.importorskip("transformers")

CONVERSATIONS = [
    [
        {"role": "user", "content": "What does `f` return?"},
        {"role": "assistant", "content": "It returns 1.\n<ANSWER>: `1`"},
    ],
    [
        {"role": "system", "content": "You answer questions about the code in the documents."},
        {"role": "user", "content": "<DOCUMENT>\ndef f():\n    return 1\n</DOCUMENT>\n\nQ?"},
        {"role": "assistant", "content": "##begin_quote##return 1##end_quote##\n<ANSWER>: 1"},
    ],
    [
        {"role": "user", "content": "unicode é漢字🙂 and\n\nblank lines\n"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "  indented\n\tanswer  "},
    ],
]


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(MODEL_DIR))


def test_template_is_stored_in_tokenizer_config() -> None:
    config = json.loads((MODEL_DIR / "tokenizer_config.json").read_text())
    assert "<|assistant|>" in config["chat_template"]
    assert config["eos_token"] == END_OF_TURN


def test_special_tokens_are_single_tokens(tokenizer) -> None:
    model_config = json.loads((MODEL_DIR / "config.json").read_text())
    for token in [*ROLE_TOKENS.values(), END_OF_TURN]:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    assert tokenizer.eos_token == END_OF_TURN
    assert tokenizer.eos_token_id == model_config["eos_token_id"]


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_render_parses_back(tokenizer, messages: list[dict[str, str]]) -> None:
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert parse_chat(text) == messages
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_prompt_is_a_prefix_of_the_full_rendering(tokenizer, messages) -> None:
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    assert full.startswith(prompt)
    assert prompt.endswith(ROLE_TOKENS["assistant"] + "\n")
    assert parse_chat(prompt) == messages[:-1]


def test_forge_torch_finds_the_answer(tokenizer) -> None:
    data = pytest.importorskip("forge_torch.data")
    example = data.tokenize_conversation(tokenizer, CONVERSATIONS[1])
    answer = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label >= 0]
    assert tokenizer.decode(answer) == CONVERSATIONS[1][-1]["content"] + END_OF_TURN + "\n"


def test_unknown_role_is_refused(tokenizer) -> None:
    with pytest.raises(Exception, match="roles system, user and assistant"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_forge_core_renders_the_template_as_transformers_does(tokenizer, messages) -> None:
    from forge_core.chat_template import load_chat_template

    template = load_chat_template(MODEL_DIR)
    assert template is not None
    assert template.render(messages) == tokenizer.apply_chat_template(messages, tokenize=False)
    assert template.render(messages[:-1], add_generation_prompt=True) == (
        tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    )


def test_template_overhead_is_what_the_trainer_adds(tokenizer) -> None:
    """Content tokens + the measured overhead = the trainer's length of the example."""
    from forge_core.chat_template import load_chat_template
    from forge_core.validation import token_counter

    data = pytest.importorskip("forge_torch.data")
    count, _ = token_counter(MODEL_DIR / "tokenizer.json")
    overhead = load_chat_template(MODEL_DIR).overhead(("system", "user", "assistant"), count)
    assert overhead == 12  # per turn: role token, newline, end token, newline
    messages = CONVERSATIONS[1]
    content = sum(count(m["content"]) for m in messages)
    assert content + overhead == len(data.tokenize_conversation(tokenizer, messages))


def test_examples_leave_room_for_the_template(tmp_path, monkeypatch) -> None:
    from forge_core.config import ForgeSettings
    from forge_core.pipeline import Forge
    from forge_core.plugins import PluginRegistry

    monkeypatch.chdir(tmp_path)
    settings = ForgeSettings.model_validate(
        {"train": {"max_seq_len": 512}, "validation": {"max_tokens": 2048}}
    )
    forge = Forge(settings, tmp_path / "run", registry=PluginRegistry())
    assert forge.example_token_limit() == 512 - 12
    settings.validation.max_tokens = 300
    assert forge.example_token_limit() == 300

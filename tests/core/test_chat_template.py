"""Reading and rendering a model's chat template without transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_core.chat_template import ChatTemplateError, load_chat_template

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_config(folder: Path, **config: object) -> Path:
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def test_renders_a_template_from_tokenizer_config(tmp_path: Path) -> None:
    template = load_chat_template(write_config(tmp_path, chat_template=CHATML))
    assert template is not None
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert template.render(messages) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
    )
    prompt = template.render(messages[:1], add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_overhead_counts_only_the_templates_own_tokens(tmp_path: Path) -> None:
    template = load_chat_template(write_config(tmp_path, chat_template=CHATML))
    assert template is not None
    # The stand-in counts two words a turn ("<|im_start|>user", "x<|im_end|>") where the
    # content alone ("x") is one: the template adds one token a turn.
    assert template.overhead(("user", "assistant"), words) == 2
    assert template.overhead(("system", "user", "assistant"), words) == 3


def test_jinja_file_wins_and_named_templates_use_default(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        chat_template=[
            {"name": "tool_use", "template": "T"},
            {"name": "default", "template": "D{{ eos_token }}"},
        ],
        eos_token={"content": "</s>"},
    )
    template = load_chat_template(tmp_path)
    assert template is not None and template.render([]) == "D</s>"
    (tmp_path / "chat_template.jinja").write_text("J")
    template = load_chat_template(tmp_path)
    assert template is not None and template.render([]) == "J"


def test_a_folder_without_template_has_none(tmp_path: Path) -> None:
    assert load_chat_template(tmp_path) is None
    assert load_chat_template(write_config(tmp_path, eos_token="</s>")) is None


def test_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ChatTemplateError, match="not readable JSON"):
        load_chat_template(tmp_path)
    with pytest.raises(ChatTemplateError, match="not valid Jinja"):
        load_chat_template(write_config(tmp_path, chat_template="{% for %}"))
    refusing = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}"
    )
    template = load_chat_template(write_config(tmp_path, chat_template=refusing))
    assert template is not None
    with pytest.raises(ChatTemplateError, match="refused the conversation: no system"):
        template.render([{"role": "system", "content": "s"}])


def test_templates_may_print_the_date(tmp_path: Path) -> None:
    from datetime import datetime

    dated = "Today: {{ strftime_now('%Y') }}{% for m in messages %}|{{ m['content'] }}{% endfor %}"
    template = load_chat_template(write_config(tmp_path, chat_template=dated))
    assert template is not None
    assert template.render([{"role": "user", "content": "hi"}]) == (
        f"Today: {datetime.now().year}|hi"
    )

"""Chat-template translation, tested as data: known_templates.toml.

For each known template, the translation must equal the expected Go template,
and the Jinja template (rendered with jinja2, as transformers does) and the Go
template (rendered the way Ollama feeds it) must give identical prompts.
"""

from __future__ import annotations

import json
import tomllib
from importlib import util
from pathlib import Path
from typing import Any

import pytest

from forge_ollama.gotemplate import ollama_prompt
from forge_ollama.template import (
    TemplateError,
    check_translation,
    render_jinja,
    translate_chat_template,
)

DATA = tomllib.loads((Path(__file__).parent / "known_templates.toml").read_text("utf-8"))
TEMPLATES = {entry["name"]: entry for entry in DATA["template"]}
UNSUPPORTED = {entry["name"]: entry for entry in DATA["unsupported"]}

CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "What does `parse_config` return?"}],
    [
        {"role": "system", "content": "You answer questions about the repository."},
        {"role": "user", "content": "Where is {{ settings }} read?\n\nDocuments:\n<doc>x</doc>"},
    ],
    [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer\n```python\nreturn 1\n```"},
        {"role": "user", "content": "second question"},
    ],
    [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ],
    [{"role": "user", "content": 'quotes " and \\ backslashes, unicode: é ✓'}],
]


def _expected(entry: dict[str, Any], messages: list[dict[str, str]]) -> str:
    return render_jinja(
        entry["jinja"],
        messages,
        add_generation_prompt=messages[-1]["role"] != "assistant",
        bos_token=entry["bos_token"],
        eos_token=entry["eos_token"],
    )


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_translation_is_the_expected_go_template(name: str) -> None:
    entry = TEMPLATES[name]
    translated = translate_chat_template(
        entry["jinja"], bos_token=entry["bos_token"], eos_token=entry["eos_token"]
    )
    assert translated.text == entry["go"]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_jinja_and_go_render_identical_prompts(name: str, index: int) -> None:
    entry = TEMPLATES[name]
    messages = CONVERSATIONS[index]
    assert ollama_prompt(entry["go"], messages) == _expected(entry, messages)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_the_default_system_prompt_is_rendered_like_a_system_message(name: str) -> None:
    """Ollama prepends the Modelfile's SYSTEM to a conversation that has none."""
    entry = TEMPLATES[name]
    question = [{"role": "user", "content": "hello"}]
    with_system = [{"role": "system", "content": "Answer from the documents."}, *question]
    rendered = ollama_prompt(entry["go"], question, system="Answer from the documents.")
    assert rendered == _expected(entry, with_system)


def test_the_tinycoder_entry_is_the_packaged_template() -> None:
    """The data file's tinycoder template is forge_tinycoder's real one."""
    if util.find_spec("forge_tinycoder") is None:
        pytest.skip("forge_tinycoder is not installed")
    from importlib import resources

    package = resources.files("forge_tinycoder")
    config = package.joinpath("model", "tokenizer_config.json")
    if config.is_file():
        actual = json.loads(config.read_text("utf-8"))["chat_template"]
    else:
        actual = package.joinpath("chat_template.jinja").read_text("utf-8")
    assert TEMPLATES["tinycoder"]["jinja"] == actual


def test_tool_branches_and_the_default_system_prompt_of_qwen_survive() -> None:
    go = TEMPLATES["qwen2.5"]["go"]
    assert "tool" not in go  # Forge sends no tools: those branches fold away
    assert "You are Qwen, created by Alibaba Cloud." in go


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_constructs_fail_clearly(name: str) -> None:
    entry = UNSUPPORTED[name]
    with pytest.raises(TemplateError) as caught:
        translate_chat_template(entry["jinja"])
    message = str(caught.value)
    assert entry["error"] in message
    assert "deploy.ollama_template" in message


def test_invalid_jinja_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="not valid Jinja"):
        translate_chat_template("{% for m in messages %}{{ m.content }}")


def test_approximations_are_reported() -> None:
    llama3 = translate_chat_template(TEMPLATES["llama3"]["jinja"], bos_token="<s>")
    assert any("trim" in note for note in llama3.notes)
    tinycoder = translate_chat_template(TEMPLATES["tinycoder"]["jinja"])
    assert any("raise_exception" in note for note in tinycoder.notes)


def test_check_translation_catches_a_wrong_go_template() -> None:
    entry = TEMPLATES["chatml"]
    check_translation(entry["jinja"], entry["go"], eos_token=entry["eos_token"])
    broken = entry["go"].replace("<|im_end|>\n{{ end }}", "<|im_end|>{{ end }}")
    with pytest.raises(TemplateError, match="different prompt"):
        check_translation(entry["jinja"], broken, eos_token=entry["eos_token"])

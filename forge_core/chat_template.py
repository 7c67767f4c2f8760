"""A model's chat template, read and rendered without transformers.

The trainer renders every example with the base model's chat template before it
counts tokens, so the template's own tokens (role markers, end-of-turn tokens) are part
of each example's length. Synthesis and validation run before any model is loaded;
they use this module to learn how many tokens the template adds, so that an example
they keep is one the trainer can keep too.

The template is rendered the way Hugging Face tokenizers render it: Jinja2 in a
sandbox, ``trim_blocks`` and ``lstrip_blocks`` on, with ``raise_exception``,
``strftime_now`` and the tokenizer's special tokens (``bos_token``, ``eos_token``, ...)
in scope.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "ChatTemplate",
    "ChatTemplateError",
    "load_chat_template",
    "template_tokens",
]

#: Content of each probe message when measuring a template's own tokens.
PROBE_CONTENT = "x"
#: The turns of a training example, then the same without a system turn (which some
#: templates refuse).
EXAMPLE_ROLES = (("system", "user", "assistant"), ("user", "assistant"))


class ChatTemplateError(ValueError):
    """The model folder's chat template cannot be read or rendered."""


class ChatTemplate:
    """A Jinja chat template with the special tokens it may refer to."""

    def __init__(self, source: str, special_tokens: dict[str, str] | None = None) -> None:
        self.source = source
        self.special_tokens = dict(special_tokens or {})
        self._template = _compile(source)

    def render(
        self, messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = False
    ) -> str:
        """The conversation as the model sees it (a prompt when ``add_generation_prompt``)."""
        try:
            return str(
                self._template.render(
                    messages=list(messages),
                    add_generation_prompt=add_generation_prompt,
                    **self.special_tokens,
                )
            )
        except ChatTemplateError:
            raise
        except Exception as error:  # Jinja raises many types; name the template's problem
            raise ChatTemplateError(f"the chat template failed to render: {error}") from error

    def overhead(self, roles: Sequence[str], count_tokens: Callable[[str], int]) -> int:
        """Tokens the template adds to a conversation with these roles, beyond its contents.

        Measured on probe messages: tokens of the rendering minus tokens of the contents.
        Exact for templates that put special tokens around each message (tinycoder,
        ChatML/Qwen, Llama 3), where a message's tokens cannot merge with the template's.
        """
        messages = [{"role": role, "content": PROBE_CONTENT} for role in roles]
        rendered = count_tokens(self.render(messages))
        return max(0, rendered - len(messages) * count_tokens(PROBE_CONTENT))


def load_chat_template(model_dir: Path) -> ChatTemplate | None:
    """The chat template saved with a model, or None when the folder has none.

    transformers saves it as ``chat_template.jinja`` (5.x) or as ``chat_template`` in
    ``tokenizer_config.json`` (a string, or a list of named templates: ``default`` is used).
    """
    config_file = model_dir / "tokenizer_config.json"
    config: dict[str, Any] = {}
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ChatTemplateError(f"{config_file} is not readable JSON: {error}") from error
    jinja_file = model_dir / "chat_template.jinja"
    source: Any = (
        jinja_file.read_text(encoding="utf-8")
        if jinja_file.is_file()
        else config.get("chat_template")
    )
    if isinstance(source, list):
        named = {
            item.get("name"): item.get("template") for item in source if isinstance(item, dict)
        }
        source = named.get("default")
    if not isinstance(source, str) or not source.strip():
        return None
    return ChatTemplate(source, _special_tokens(config))


def template_tokens(model_dir: Path, count_tokens: Callable[[str], int]) -> int:
    """Tokens the chat template saved in ``model_dir`` adds to a training example's
    messages: 0 when the folder has no template, or it refuses both role sets."""
    template = load_chat_template(model_dir)
    if template is None:
        return 0
    for roles in EXAMPLE_ROLES:
        try:
            return template.overhead(roles, count_tokens)
        except ChatTemplateError:
            continue
    return 0


def _special_tokens(config: dict[str, Any]) -> dict[str, str]:
    """``bos_token``, ``eos_token``, ... as strings (they may be saved as token objects)."""
    tokens = {}
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        value = config.get(name)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            tokens[name] = value
    return tokens


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"the chat template refused the conversation: {message}")


@cache
def _compile(source: str) -> Any:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.globals["raise_exception"] = _raise_exception
    # Llama 3 templates print today's date.
    environment.globals["strftime_now"] = lambda format: datetime.now().strftime(format)
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(
        value, ensure_ascii=False, indent=indent
    )
    try:
        return environment.from_string(source)
    except TemplateError as error:
        raise ChatTemplateError(f"the chat template is not valid Jinja: {error}") from error

"""tinycoder's tokenizer: byte-level BPE (GPT-2 pre-tokenisation) and its own chat format.

Byte-level BPE over the 256-byte alphabet means every string is encodable and
decodes back exactly: there is no unknown token. The pre-tokenizer is GPT-2's
(``ByteLevel(add_prefix_space=False, use_regex=True)``), which llama.cpp
implements as the ``gpt2`` pre-tokenizer, so a GGUF export tokenises exactly as
transformers does.

The chat format has tokens of its own, one per role plus the end of a turn::

    <|system|>\\n...<|end|>\\n<|user|>\\n...<|end|>\\n<|assistant|>\\n...<|end|>\\n

``<|end|>`` is the end-of-sequence token; ``<|endoftext|>`` separates files in
pretraining and pads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

ENDOFTEXT = "<|endoftext|>"
END_OF_TURN = "<|end|>"
ROLE_TOKENS = {role: f"<|{role}|>" for role in ("system", "user", "assistant")}
#: Special tokens, in id order (they take ids 0..4).
SPECIAL_TOKENS = [ENDOFTEXT, *ROLE_TOKENS.values(), END_OF_TURN]
#: Messages as the chat template renders them.
TURN = re.compile(r"<\|(system|user|assistant)\|>\n(.*?)<\|end\|>\n", re.DOTALL)


def chat_template() -> str:
    """The Jinja chat template shipped with the package."""
    return resources.files("forge_tinycoder").joinpath("chat_template.jinja").read_text("utf-8")


def parse_chat(text: str) -> list[dict[str, str]]:
    """The messages of a rendered conversation (the inverse of the chat template)."""
    messages, position = [], 0
    for match in TURN.finditer(text):
        if match.start() != position:
            raise ValueError(f"unexpected text at offset {position}: {text[position:][:40]!r}")
        messages.append({"role": match.group(1), "content": match.group(2)})
        position = match.end()
    if text[position:] not in ("", ROLE_TOKENS["assistant"] + "\n"):
        raise ValueError(f"unexpected text at offset {position}: {text[position:][:40]!r}")
    return messages


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """Train the byte-level BPE on ``texts``; returns a ``tokenizers.Tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def wrap_tokenizer(tokenizer: Any) -> Any:
    """The transformers tokenizer around a trained ``tokenizers.Tokenizer``, chat template set."""
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token=END_OF_TURN,
        pad_token=ENDOFTEXT,
        additional_special_tokens=list(ROLE_TOKENS.values()),
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
    wrapped.chat_template = chat_template()
    return wrapped


def save_tokenizer(wrapped: Any, folder: Path, context_length: int) -> None:
    """Save the tokenizer with the chat template inside ``tokenizer_config.json``.

    transformers 5 writes the template to ``chat_template.jinja``; tools that
    read only ``tokenizer_config.json`` (and older transformers) need it there.
    """
    import json

    wrapped.model_max_length = context_length
    wrapped.save_pretrained(str(folder))
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text("utf-8"))
    # A class every transformers version knows (5.x writes its own new name).
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["additional_special_tokens"] = list(ROLE_TOKENS.values())
    for key in ("is_local", "local_files_only"):
        config.pop(key, None)
    config["chat_template"] = chat_template()
    config["model_max_length"] = context_length
    config["add_bos_token"] = False
    config["add_eos_token"] = False
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (folder / "chat_template.jinja").unlink(missing_ok=True)


def sample_texts(paths: Iterable[Path], max_chars: int) -> Iterator[str]:
    """File texts until ``max_chars`` characters have been given (for tokenizer training)."""
    total = 0
    for path in paths:
        if total >= max_chars:
            return
        text = path.read_text(encoding="utf-8")
        total += len(text)
        yield text

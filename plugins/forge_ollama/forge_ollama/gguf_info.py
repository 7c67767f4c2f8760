"""What the Ollama deployment needs from a GGUF's metadata: chat template and special tokens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class GGUFReadError(ValueError):
    """The file is missing or not a readable GGUF."""


@dataclass(frozen=True)
class ChatInfo:
    """The chat-relevant metadata of a GGUF."""

    architecture: str
    chat_template: str | None
    bos_token: str
    eos_token: str
    end_of_turn: tuple[str, ...]
    add_bos: bool
    context_length: int | None


def _value(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    return field.contents()


def _token(reader: Any, token_id: Any) -> str:
    """The text of one token, read without materialising the whole vocabulary."""
    field = reader.fields.get("tokenizer.ggml.tokens")
    if field is None or token_id is None or not 0 <= int(token_id) < len(field.data):
        return ""
    return bytes(field.parts[field.data[int(token_id)]]).decode("utf-8", "replace")


def read_chat_info(path: Path) -> ChatInfo:
    """Read the chat template, BOS/EOS/EOT tokens and context length of ``path``."""
    from gguf import GGUFReader

    if not path.is_file():
        raise GGUFReadError(f"the GGUF file {path} does not exist; run `forge export` first")
    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise GGUFReadError(f"{path} is not a readable GGUF file: {exc}") from exc
    architecture = str(_value(reader, "general.architecture") or "llama")
    template = _value(reader, "tokenizer.chat_template")
    eos = _token(reader, _value(reader, "tokenizer.ggml.eos_token_id"))
    eot = _token(reader, _value(reader, "tokenizer.ggml.eot_token_id"))
    ends = tuple(dict.fromkeys(t for t in (eot, eos) if t))
    context = _value(reader, f"{architecture}.context_length")
    return ChatInfo(
        architecture=architecture,
        chat_template=str(template) if template else None,
        bos_token=_token(reader, _value(reader, "tokenizer.ggml.bos_token_id")),
        eos_token=eos,
        end_of_turn=ends,
        add_bos=bool(_value(reader, "tokenizer.ggml.add_bos_token")),
        context_length=int(context) if context is not None else None,
    )

"""What the llama.cpp target reads from a GGUF before serving it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_llamacpp.logs import captured_llama_cpp_log
from forge_llamacpp.server import LlamaCppError


@dataclass(frozen=True)
class GGUFFacts:
    """The chat-relevant facts of a GGUF, as llama.cpp reads them."""

    architecture: str
    chat_template: str | None
    context_length: int | None
    bos_token: str
    eos_token: str


def token_text(llm: Any, token_id: int) -> str:
    """The text of a special token (``<|end|>``), as the chat template writes it."""
    if token_id < 0:
        return ""
    return bytes(llm.detokenize([token_id], special=True)).decode("utf-8", errors="replace")


def facts_from_llama(llm: Any) -> GGUFFacts:
    """Read the facts from a loaded ``llama_cpp.Llama``."""
    metadata: dict[str, str] = llm.metadata
    architecture = metadata.get("general.architecture", "llama")
    context = metadata.get(f"{architecture}.context_length")
    return GGUFFacts(
        architecture=architecture,
        chat_template=metadata.get("tokenizer.chat_template") or None,
        context_length=int(context) if context else None,
        bos_token=token_text(llm, llm.token_bos()),
        eos_token=token_text(llm, llm.token_eos()),
    )


def inspect_gguf(path: Path) -> GGUFFacts:
    """Load only the vocabulary and metadata of ``path`` (fast) and read its facts."""
    if not path.is_file():
        raise LlamaCppError(
            f"the GGUF file {path} does not exist; run `forge export` first "
            "(the deploy stage serves the first artifact of export/result.json)"
        )
    from llama_cpp import Llama

    # llama.cpp's errors are kept for the message should loading fail (a vocabulary-only
    # load also warns of a "training context overflow", n_ctx_train 0, that does not exist).
    try:
        with captured_llama_cpp_log(logging.ERROR) as log:
            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        detail = "\n".join(log)
        raise LlamaCppError(
            f"llama.cpp cannot load {path}: {exc}" + (f"\n{detail}" if detail else "")
        ) from exc
    try:
        return facts_from_llama(llm)
    finally:
        llm.close()

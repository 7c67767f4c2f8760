"""Tokenizer metadata for GGUF: byte-level BPE tokens, merges, types, special ids, chat template.

llama.cpp re-implements the tokenizer from what the GGUF says, so everything the
Hugging Face tokenizer does must be spelt out here: the vocabulary with a type
per token, the merges in rank order, the pre-tokenizer (the regex that splits
text before BPE; ``tokenizer.ggml.pre`` names one llama.cpp knows), the special
token ids and whether BOS/EOS are added, and the chat template. The fidelity
check (:mod:`forge_gguf.fidelity`) then proves the two tokenise alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import gguf

#: A sentinel assistant reply used to find the template's end-of-turn token.
_PROBE_REPLY = "FORGE-PROBE-REPLY"


class UnsupportedTokenizer(ValueError):
    """The tokenizer cannot be expressed as a llama.cpp vocabulary."""


@dataclass
class VocabMetadata:
    """Everything ``tokenizer.*`` in the GGUF, ready to write."""

    pre: str
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    bos_id: int | None
    eos_id: int | None
    eot_id: int | None
    pad_id: int | None
    unk_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | dict[str, str] | None
    model: str = "gpt2"
    notes: list[str] = field(default_factory=list)


def known_pre_tokenizers() -> dict[str, Any]:
    """The table from Hugging Face pre-tokenizer shapes to llama.cpp pre-tokenizer names."""
    text = resources.files("forge_gguf").joinpath("data/pretokenizers.json").read_text("utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def detect_pre_tokenizer(spec: dict[str, Any] | None) -> str:
    """The llama.cpp ``tokenizer.ggml.pre`` name for a ``tokenizer.json`` pre-tokenizer.

    A bare ``ByteLevel(use_regex=True)`` is GPT-2's regex, which llama.cpp calls
    ``gpt-2`` (its ``default`` is a different regex). A ``Split`` regex followed
    by ``ByteLevel(use_regex=False)`` is looked up by its pattern.
    """
    table = known_pre_tokenizers()
    if spec is None:
        raise UnsupportedTokenizer("the tokenizer has no pre-tokenizer; expected byte-level BPE")
    kind = spec.get("type")
    if kind == "ByteLevel":
        if spec.get("add_prefix_space"):
            raise UnsupportedTokenizer(
                "ByteLevel(add_prefix_space=True) has no llama.cpp equivalent; "
                "train the tokenizer with add_prefix_space=False"
            )
        if not spec.get("use_regex", True):
            raise UnsupportedTokenizer("ByteLevel(use_regex=False) without a Split regex")
        return str(table["byte_level"])
    if kind == "Sequence":
        steps = spec.get("pretokenizers", [])
        if (
            len(steps) == 2
            and steps[0].get("type") == "Split"
            and steps[1].get("type") == "ByteLevel"
            and not steps[1].get("use_regex", True)
        ):
            pattern = steps[0].get("pattern", {}).get("Regex")
            if pattern in table["split_regex"]:
                return str(table["split_regex"][pattern])
            raise UnsupportedTokenizer(
                f"unknown pre-tokenizer regex {pattern!r}; set export.pre_tokenizer to the "
                "llama.cpp name for it (see src/llama-vocab.cpp) and check the fidelity report"
            )
    raise UnsupportedTokenizer(
        f"pre-tokenizer {kind!r} is not a byte-level BPE pre-tokenizer this exporter knows; "
        "set export.pre_tokenizer to force a llama.cpp name"
    )


def _merges(model: dict[str, Any]) -> list[str]:
    """Merges as ``"left right"`` strings in rank order (tokenizers writes pairs or strings)."""
    merges: list[str] = []
    for merge in model.get("merges", []):
        left, right = merge if isinstance(merge, list) else merge.split(" ", 1)
        if " " in left or " " in right:
            raise UnsupportedTokenizer(f"merge {merge!r} has a space: not a byte-level BPE")
        merges.append(f"{left} {right}")
    return merges


def end_of_turn_token(tokenizer: Any) -> str | None:
    """The special token the chat template writes right after an assistant reply."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    conversation = [
        {"role": "user", "content": "FORGE-PROBE-QUESTION"},
        {"role": "assistant", "content": _PROBE_REPLY},
    ]
    try:
        rendered = tokenizer.apply_chat_template(conversation, tokenize=False)
    except Exception:  # a template may reject the probe; then EOS decides
        return None
    tail = str(rendered).split(_PROBE_REPLY, 1)[-1]
    specials: list[str] = sorted(
        (t.content for t in tokenizer.added_tokens_decoder.values() if t.special),
        key=len,
        reverse=True,
    )
    stripped = tail.lstrip()
    for token in specials:
        if stripped.startswith(token):
            return token
    return None


def _add_flags(tokenizer: Any) -> tuple[bool, bool]:
    """Whether encoding adds BOS in front and EOS at the end (what llama.cpp must copy)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    add_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    add_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    return add_bos, add_eos


def read_vocab(
    tokenizer: Any,
    n_vocab: int,
    *,
    pre_override: str | None = None,
) -> VocabMetadata:
    """Build the GGUF tokenizer metadata from a transformers fast tokenizer.

    ``n_vocab`` is the number of embedding rows: ids the tokenizer never uses
    become ``[PAD<id>]`` tokens of type UNUSED, as llama.cpp needs one token per row.
    BOS is written only when the tokenizer has one (a config's ``bos_token_id`` is
    often a library default that names an unrelated token); without it
    ``add_bos_token`` is false, so llama.cpp never inserts one.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedTokenizer("a fast (tokenizers-backed) tokenizer is needed")
    spec = json.loads(backend.to_str())
    model = spec["model"]
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise UnsupportedTokenizer(
            f"tokenizer model {model.get('type')!r} (byte_fallback={model.get('byte_fallback')}) "
            "is not byte-level BPE; only byte-level BPE tokenizers are exported"
        )
    notes: list[str] = []
    pre = pre_override or detect_pre_tokenizer(spec.get("pre_tokenizer"))
    if spec.get("normalizer"):
        notes.append(
            f"normalizer {spec['normalizer'].get('type')} is not applied by llama.cpp; "
            "tokenisation matches on already-normalised text"
        )

    tokens: list[str | None] = [None] * n_vocab
    types = [int(gguf.TokenType.UNUSED)] * n_vocab
    for text, index in model["vocab"].items():
        if index >= n_vocab:
            raise UnsupportedTokenizer(f"token {text!r} has id {index} ≥ vocab size {n_vocab}")
        tokens[index] = text
        types[index] = int(gguf.TokenType.NORMAL)
    for added in spec.get("added_tokens", []):
        index = added["id"]
        if index >= n_vocab:
            raise UnsupportedTokenizer(f"added token {added['content']!r} id {index} ≥ {n_vocab}")
        tokens[index] = added["content"]
        special = added.get("special", False)
        types[index] = int(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        if added.get("lstrip") or added.get("rstrip"):
            notes.append(f"added token {added['content']!r} strips spaces; llama.cpp does not")
    filled = [text if text is not None else f"[PAD{i}]" for i, text in enumerate(tokens)]

    eot = end_of_turn_token(tokenizer)
    eot_id = tokenizer.convert_tokens_to_ids(eot) if eot else None
    eos_id = eot_id if eot_id is not None else tokenizer.eos_token_id
    bos_id = tokenizer.bos_token_id
    add_bos, add_eos = _add_flags(tokenizer)
    return VocabMetadata(
        pre=pre,
        tokens=filled,
        token_types=types,
        merges=_merges(model),
        bos_id=bos_id,
        eos_id=eos_id,
        eot_id=eot_id,
        pad_id=tokenizer.pad_token_id,
        unk_id=tokenizer.unk_token_id,
        add_bos=add_bos,
        add_eos=add_eos,
        chat_template=tokenizer.chat_template,
        notes=notes,
    )


def write_vocab(writer: gguf.GGUFWriter, vocab: VocabMetadata) -> None:
    """Add the ``tokenizer.*`` keys to a GGUF writer."""
    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    if vocab.bos_id is not None:
        writer.add_bos_token_id(vocab.bos_id)
    if vocab.eos_id is not None:
        writer.add_eos_token_id(vocab.eos_id)
    if vocab.eot_id is not None:
        writer.add_eot_token_id(vocab.eot_id)
    if vocab.pad_id is not None:
        writer.add_pad_token_id(vocab.pad_id)
    if vocab.unk_id is not None:
        writer.add_unk_token_id(vocab.unk_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if isinstance(vocab.chat_template, dict):
        default = vocab.chat_template.get("default")
        if default:
            writer.add_chat_template(default)
        for name, template in vocab.chat_template.items():
            if name != "default":
                writer.add_string(f"{gguf.Keys.Tokenizer.CHAT_TEMPLATE}.{name}", template)
    elif vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)

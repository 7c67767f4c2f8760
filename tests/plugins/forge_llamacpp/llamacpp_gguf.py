"""A tiny llama GGUF written in code: a deterministic "bigram" chat model.

Every block's output projections are zero, so the residual stream at a position
is the embedding of that position's token; embeddings are one-hot, so the
logits are a column of ``output.weight``: the model is a bigram table. The
table makes the assistant answer ``hi`` and then end its turn with ``<|end|>``
(the EOS / end-of-turn token), which is exactly what the tests check: greedy
generation, streaming, and that the end-of-turn token stops generation.
Log-probs follow analytically: ``sqrt(hidden)`` for the table's choice, 0 elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The tinycoder-style chat template (same special tokens as forge_tinycoder).
TEMPLATE = (
    "{%- for message in messages -%}\n"
    "{{ '<|' ~ message['role'] ~ '|>\\n' ~ message['content'] ~ '<|end|>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "{{ '<|assistant|>\\n' }}\n"
    "{%- endif -%}\n"
)
SPECIALS = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
HIDDEN = 288
HEADS = 4
FFN = 32
CONTEXT = 512
#: The answer the bigram table produces after ``<|assistant|>\n``.
ANSWER = "hi"


def byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode alphabet: one printable character per byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    table = dict(zip(printable, chars, strict=True))
    return [chr(table[byte]) for byte in range(256)]


def vocabulary() -> tuple[list[str], dict[str, int]]:
    """Byte tokens, one merged token (so the merge list is not empty), the specials."""
    tokens = [*byte_tokens(), "ĠĠ", *SPECIALS]
    return tokens, {token: index for index, token in enumerate(tokens)}


def byte_id(char: str) -> int:
    """The token id of an ASCII character (byte tokens are in byte order)."""
    return ord(char)


def bigram_next(ids: dict[str, int]) -> dict[int, int]:
    """The table: "\\n" → "h" → "i" → <|end|> → "\\n"; everything else → <|end|>."""
    end = ids["<|end|>"]
    table = dict.fromkeys(ids.values(), end)
    newline, h, i = byte_id("\n"), byte_id("h"), byte_id("i")
    table.update({newline: h, h: i, i: end, end: newline})
    return table


def write_tiny_gguf(
    path: Path, *, template: str | None = TEMPLATE, name: str = "tiny", add_bos: bool = False
) -> Path:
    """Write the bigram chat model to ``path`` (F32, about 1 MB); ``add_bos``: the vocabulary
    asks for a BOS token (``<|endoftext|>``) before tokenised text."""
    import gguf

    tokens, ids = vocabulary()
    vocab = len(tokens)
    assert vocab <= HIDDEN, "one-hot embeddings need hidden >= vocabulary"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(1)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    types = [gguf.TokenType.NORMAL] * (vocab - len(SPECIALS)) + [gguf.TokenType.CONTROL] * len(
        SPECIALS
    )
    writer.add_token_types(types)
    writer.add_token_merges(["Ġ Ġ"])
    writer.add_bos_token_id(ids["<|endoftext|>"])
    writer.add_eos_token_id(ids["<|end|>"])
    writer.add_eot_token_id(ids["<|end|>"])
    writer.add_pad_token_id(ids["<|endoftext|>"])
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(False)
    if template is not None:
        writer.add_chat_template(template)

    embeddings = np.zeros((vocab, HIDDEN), dtype=np.float32)
    embeddings[np.arange(vocab), np.arange(vocab)] = 1.0
    output = np.zeros((vocab, HIDDEN), dtype=np.float32)
    for source, target in bigram_next(ids).items():
        output[target, source] = 1.0
    square = np.zeros((HIDDEN, HIDDEN), dtype=np.float32)
    tensors = {
        "token_embd.weight": embeddings,
        "output_norm.weight": np.ones(HIDDEN, dtype=np.float32),
        "output.weight": output,
        "blk.0.attn_norm.weight": np.ones(HIDDEN, dtype=np.float32),
        "blk.0.attn_q.weight": square,
        "blk.0.attn_k.weight": square,
        "blk.0.attn_v.weight": square,
        "blk.0.attn_output.weight": square,
        "blk.0.ffn_norm.weight": np.ones(HIDDEN, dtype=np.float32),
        "blk.0.ffn_gate.weight": np.zeros((FFN, HIDDEN), dtype=np.float32),
        "blk.0.ffn_up.weight": np.zeros((FFN, HIDDEN), dtype=np.float32),
        "blk.0.ffn_down.weight": np.zeros((HIDDEN, FFN), dtype=np.float32),
    }
    for tensor_name, values in tensors.items():
        writer.add_tensor(tensor_name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

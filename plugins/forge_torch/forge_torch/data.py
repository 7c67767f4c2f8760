"""Training data: chat examples → token ids with assistant-only labels → packed rows.

Tokenisation renders each example with the model's own chat template: the
prompt part (every turn but the answer, with the generation prompt) and the
answer part are tokenised separately and concatenated, so the label mask is
exact at the boundary; only the answer's tokens (including the template's
end-of-turn tokens, so the model learns to stop) carry labels.

Packing puts several examples in one row without cross-contamination: each
example's position ids restart at 0, and the attention mask is block-diagonal
causal (an example only ever sees its own earlier tokens). Rows are filled
first-fit-decreasing, so short RAFT examples waste almost no compute on padding.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenizedExample:
    """One example's token ids and labels (``IGNORE_INDEX`` outside the answer)."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def read_messages(path: Path) -> list[list[dict[str, str]]]:
    """The ``messages`` of every example in a JSONL split."""
    conversations = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                conversations.append(json.loads(line)["messages"])
    return conversations


def tokenize_conversation(tokenizer: Any, messages: Sequence[dict[str, str]]) -> TokenizedExample:
    """Token ids of a whole conversation; labels only on the last (assistant) message."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a training conversation must end with the assistant's message")
    full = tokenizer.apply_chat_template(list(messages), tokenize=False)
    prompt = tokenizer.apply_chat_template(
        list(messages[:-1]), tokenize=False, add_generation_prompt=True
    )
    if not full.startswith(prompt):
        raise ValueError(
            "the chat template renders the prompt differently with and without the answer; "
            "Forge cannot find where the answer starts"
        )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    return TokenizedExample(
        input_ids=[*prompt_ids, *answer_ids],
        labels=[IGNORE_INDEX] * len(prompt_ids) + list(answer_ids),
    )


def examples_digest(examples: Sequence[TokenizedExample]) -> str:
    """SHA-256 of the examples' token ids and labels, in order (what training sees)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.input_ids, example.labels]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def tokenize_file(
    tokenizer: Any, path: Path, max_seq_len: int, *, sample: int | None = None, seed: int = 0
) -> tuple[list[TokenizedExample], int]:
    """Tokenise a split; examples longer than ``max_seq_len`` are dropped and counted.

    ``sample``: tokenise only that many conversations, a fixed random choice (by
    ``seed``) kept in file order, when the split has more.
    """
    conversations = read_messages(path)
    if sample is not None and len(conversations) > sample:
        chosen = sorted(random.Random(seed).sample(range(len(conversations)), sample))
        conversations = [conversations[i] for i in chosen]
    examples, too_long = [], 0
    for messages in conversations:
        example = tokenize_conversation(tokenizer, messages)
        if len(example) > max_seq_len:
            too_long += 1
            continue
        examples.append(example)
    return examples, too_long


def pack(examples: Sequence[TokenizedExample], capacity: int) -> list[list[int]]:
    """Group example indexes into rows of at most ``capacity`` tokens (first-fit decreasing)."""
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]), i))
    rows: list[list[int]] = []
    free: list[int] = []
    for index in order:
        size = len(examples[index])
        for row, space in enumerate(free):
            if size <= space:
                rows[row].append(index)
                free[row] -= size
                break
        else:
            rows.append([index])
            free.append(capacity - size)
    return rows


def row_capacity(examples: Sequence[TokenizedExample], max_seq_len: int) -> int:
    """Tokens per packed row: the longest example, at most ``max_seq_len``.

    Attention inside a packed row costs (row length)², masked parts included, so
    rows no longer than the longest example keep that waste to a small factor
    while still filling the padding of short examples with other examples.
    """
    return min(max_seq_len, max((len(e) for e in examples), default=1))


def epoch_rows(
    examples: Sequence[TokenizedExample], capacity: int, packing: bool, seed: int, epoch: int
) -> list[list[int]]:
    """The rows of one epoch, in a deterministic order for (seed, epoch)."""
    rows = pack(examples, capacity) if packing else [[i] for i in range(len(examples))]
    random.Random(seed * 1_000_003 + epoch).shuffle(rows)
    return rows


@dataclass
class Batch:
    """Tensors for one forward pass."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    real_tokens: int
    label_tokens: int

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device``."""
        return Batch(
            self.input_ids.to(device),
            self.labels.to(device),
            self.position_ids.to(device),
            self.attention_mask.to(device),
            self.real_tokens,
            self.label_tokens,
        )


def collate(
    examples: Sequence[TokenizedExample],
    rows: Sequence[Sequence[int]],
    pad_id: int,
    dtype: torch.dtype,
) -> Batch:
    """Stack packed rows, right-padded to the longest, with block-diagonal causal masks."""
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    segments = torch.full((len(rows), width), -1, dtype=torch.long)
    for r, row in enumerate(rows):
        offset = 0
        for segment, index in enumerate(row):
            example = examples[index]
            end = offset + len(example)
            ids[r, offset:end] = torch.tensor(example.input_ids)
            labels[r, offset:end] = torch.tensor(example.labels)
            positions[r, offset:end] = torch.arange(len(example))
            segments[r, offset:end] = segment
            offset = end
    single = all(len(row) == 1 for row in rows) and bool((segments >= 0).all())
    if single:
        # One whole example per row and no padding: plain causal attention (lets SDPA
        # use its fastest fused kernels); the empty mask tells the model to build it.
        return Batch(
            ids,
            labels,
            positions,
            torch.empty(0, dtype=dtype),
            real_tokens=int(ids.numel()),
            label_tokens=int((labels != IGNORE_INDEX).sum()),
        )
    causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
    same = (segments[:, :, None] == segments[:, None, :]) & (segments[:, :, None] >= 0)
    allowed = causal[None] & same
    # Padding rows attend to themselves only, so no row of the softmax is empty.
    allowed |= torch.eye(width, dtype=torch.bool)[None]
    # A boolean mask (True = may attend) works whatever dtype the activations end up in
    # (QLoRA keeps norms in fp32 while the compute dtype is bf16).
    return Batch(
        ids,
        labels,
        positions,
        allowed[:, None],
        real_tokens=int((segments >= 0).sum()),
        label_tokens=int((labels != IGNORE_INDEX).sum()),
    )


def micro_batches(rows: list[list[int]], rows_per_batch: int) -> Iterator[list[list[int]]]:
    """Consecutive groups of ``rows_per_batch`` rows."""
    for start in range(0, len(rows), rows_per_batch):
        yield rows[start : start + rows_per_batch]

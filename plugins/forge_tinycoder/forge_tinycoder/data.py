"""Pretraining data: corpus files → one token stream per language → random packed chunks.

Each language's training files are tokenised once (in a fixed shuffled order, up to
the preset's cap), separated by ``<|endoftext|>``, and cached as a ``uint16``
array. A batch draws each row's language by the mixture weights and a random
window of that stream; the generator is seeded by (seed, step), so a resumed
run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forge_tinycoder.corpus import CorpusFile

#: Share of pretraining rows per language (Python first: it is what Forge users ask most).
MIXTURE = {"python": 0.45, "go": 0.30, "javascript": 0.25}


def tokenizer_digest(tokenizer: Any) -> str:
    """A short hash of the tokenizer, so cached token arrays never outlive it."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()[:16]


def tokenize_files(
    tokenizer: Any, files: Sequence[CorpusFile], max_tokens: int, separator: int, seed: int
) -> np.ndarray:
    """Token ids of the files (shuffled by ``seed``), each followed by ``separator``."""
    order = list(files)
    random.Random(seed).shuffle(order)
    ids: list[int] = []
    for start in range(0, len(order), 64):
        texts = [f.read_text() for f in order[start : start + 64]]
        for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
            ids.extend(encoding.ids)
            ids.append(separator)
        if len(ids) >= max_tokens:
            break
    return np.asarray(ids[:max_tokens], dtype=np.uint16)


def cached_stream(
    folder: Path,
    name: str,
    tokenizer: Any,
    files: Sequence[CorpusFile],
    max_tokens: int,
    separator: int,
    seed: int,
) -> np.ndarray:
    """The token stream of ``files``, read from ``folder`` when the cache matches."""
    folder.mkdir(parents=True, exist_ok=True)
    key = {
        "tokenizer": tokenizer_digest(tokenizer),
        "files": hashlib.sha256("\n".join(f.id for f in files).encode()).hexdigest()[:16],
        "max_tokens": max_tokens,
        "seed": seed,
    }
    array_path, key_path = folder / f"{name}.npy", folder / f"{name}.json"
    if array_path.is_file() and key_path.is_file() and json.loads(key_path.read_text()) == key:
        cached: np.ndarray = np.load(array_path)
        return cached
    stream = tokenize_files(tokenizer, files, max_tokens, separator, seed)
    temporary = folder / f"{name}.tmp.npy"
    np.save(temporary, stream)
    temporary.replace(array_path)
    key_path.write_text(json.dumps(key))
    return stream


def sample_batch(
    streams: dict[str, np.ndarray], rows: int, width: int, seed: int, step: int
) -> torch.Tensor:
    """``rows`` random windows of ``width`` tokens, languages drawn by :data:`MIXTURE`."""
    rng = np.random.default_rng([seed, step])
    names = [name for name in MIXTURE if name in streams and len(streams[name]) > width]
    weights = np.array([MIXTURE[name] for name in names])
    picks = rng.choice(len(names), size=rows, p=weights / weights.sum())
    batch = np.empty((rows, width), dtype=np.int64)
    for row, pick in enumerate(picks):
        stream = streams[names[pick]]
        start = int(rng.integers(0, len(stream) - width))
        batch[row] = stream[start : start + width]
    return torch.from_numpy(batch)


def evaluation_windows(stream: np.ndarray, width: int, count: int) -> torch.Tensor:
    """``count`` evenly spaced, non-overlapping windows of a held-out stream."""
    available = len(stream) // width
    if available == 0:
        return torch.empty((0, width), dtype=torch.long)
    picks = np.linspace(0, available - 1, num=min(count, available)).astype(int)
    windows = np.stack([stream[i * width : (i + 1) * width] for i in picks]).astype(np.int64)
    return torch.from_numpy(windows)

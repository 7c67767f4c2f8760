"""File helpers shared by every stage: atomic writes, hashing, JSONL."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class DataFileError(ValueError):
    """A data file is missing or malformed; the message names the file and line."""


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    A crash or an exception leaves ``target`` untouched (old content or absent),
    never half-written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, data: object) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text_atomic(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_jsonl(target: Path, records: Iterable[BaseModel]) -> int:
    """Write pydantic models one per line, atomically; return the count."""
    count = 0
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json())
            handle.write("\n")
            count += 1
    return count


def read_jsonl(path: Path, model: type[ModelT]) -> list[ModelT]:
    """Read a JSONL file of ``model`` records; errors name the file and line."""
    return list(iter_jsonl(path, model))


def iter_jsonl(path: Path, model: type[ModelT]) -> Iterator[ModelT]:
    """Iterate a JSONL file of ``model`` records, validating each line."""
    if not path.is_file():
        raise DataFileError(f"{path} does not exist")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise DataFileError(
                    f"{path}:{number}: not a valid {model.__name__}: {where}: {first['msg']}"
                ) from exc


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the sha256 hex digest of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(data: object) -> str:
    """Hash JSON-able data canonically (sorted keys), e.g. a config section."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def iter_files(path: Path) -> Iterator[Path]:
    """Yield ``path`` if it is a file, or every file below it in sorted order."""
    if path.is_file():
        yield path
        return
    for child in sorted(path.rglob("*")):
        if child.is_file() and not child.name.endswith(".tmp"):
            yield child

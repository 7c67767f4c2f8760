"""File helpers shared by every stage: atomic writes, hashing, JSONL."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
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


class HashingWriter:
    """Write bytes to a new file on a background thread, hashing them (sha256) on the way.

    Writing a file and hashing more than a couple of kilobytes release the GIL, so a
    producer that spends its time in Python (the ``mine`` stage making units) goes on
    while its output reaches the disk, and nobody reads the file back to hash it.
    ``hexdigest`` is the file's sha256 once the writer is closed. An error of the
    thread (a full disk, …) is raised by the next :meth:`write` or by :meth:`close`.
    """

    #: Bytes gathered before they go to the thread: every hand-over costs both threads
    #: a switch of the GIL, so a few large ones, not one per small write.
    BATCH_BYTES = 1 << 20
    #: Batches waiting at most: a producer faster than the disk waits, memory stays bounded.
    MAX_PENDING = 16

    def __init__(self, path: Path) -> None:
        self.size = 0
        self.hexdigest = ""
        self._digest = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._pending: queue.Queue[bytes | None] = queue.Queue(self.MAX_PENDING)
        self._error: BaseException | None = None
        self._handle = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by the thread)
        self._thread = threading.Thread(target=self._drain, name="forge-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        handle, digest = self._handle, self._digest
        try:
            with handle:
                while (data := self._pending.get()) is not None:
                    view = memoryview(data)
                    while view:
                        view = view[handle.write(view) :]
                    digest.update(data)
                    self.size += len(data)
        except BaseException as exc:  # raised again in the producer's thread
            self._error = exc
            while self._pending.get() is not None:  # never leave the producer blocked
                pass

    def write(self, data: bytes) -> None:
        """Queue ``data`` to be written after what was queued before."""
        if self._error is not None:
            self._stop()
            raise self._error
        self._batch.append(data)
        self._batch_bytes += len(data)
        if self._batch_bytes >= self.BATCH_BYTES:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._batch_bytes:
            self._pending.put(b"".join(self._batch))
        self._batch.clear()
        self._batch_bytes = 0

    def _stop(self) -> None:
        """End the thread once it has taken everything queued (after an error: at once)."""
        if self._thread.is_alive():
            self._pending.put(None)
            self._thread.join()

    def close(self) -> str:
        """Wait until everything is written; return the file's sha256 (hex)."""
        if self._error is None and self._thread.is_alive():
            self._hand_over()
        self._stop()
        if self._error is not None:
            raise self._error
        self.hexdigest = self._digest.hexdigest()
        return self.hexdigest

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:  # failing already: drop what is not written yet, and stop the thread
            self._batch.clear()
            self._stop()


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

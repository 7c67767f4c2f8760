"""HashingWriter: output written and hashed on a thread, errors raised where they show."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from forge_core.files import HashingWriter, atomic_path
from forge_core.runs import RunDir


def writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "forge-writer"]


def test_bytes_arrive_in_order_with_their_sha256(tmp_path: Path) -> None:
    # Pieces of many sizes, empty ones included, around and across the batch size.
    pieces = [bytes([i % 251]) * (i * 7919 % 300_000) for i in range(40)]
    target = tmp_path / "out.jsonl"
    with HashingWriter(target) as writer:
        for piece in pieces:
            writer.write(piece)
    expected = b"".join(pieces)
    assert target.read_bytes() == expected
    assert writer.hexdigest == hashlib.sha256(expected).hexdigest()
    assert writer.size == len(expected) > HashingWriter.BATCH_BYTES
    assert not writer_threads()


def test_an_empty_file_has_the_empty_digest(tmp_path: Path) -> None:
    with HashingWriter(tmp_path / "empty") as writer:
        writer.write(b"")
    assert (tmp_path / "empty").read_bytes() == b""
    assert writer.hexdigest == hashlib.sha256(b"").hexdigest()


DEV_FULL = Path("/dev/full")  # every write fails with "No space left on device"


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux) to fail a write")
def test_a_failed_write_is_raised_to_the_producer() -> None:
    writer = HashingWriter(DEV_FULL)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(HashingWriter.MAX_PENDING * 4):  # more than the queue holds: no hang
            writer.write(b"x" * HashingWriter.BATCH_BYTES)
    assert not writer_threads()  # stopped by the write that raised
    with pytest.raises(OSError, match="No space left"):  # and again, never a digest
        writer.close()
    assert writer.hexdigest == ""


def test_an_error_in_the_producer_stops_the_thread_and_keeps_no_file(tmp_path: Path) -> None:
    target = tmp_path / "units.jsonl"
    with pytest.raises(ValueError, match="parser broke"):
        with atomic_path(target) as partial, HashingWriter(partial) as writer:
            writer.write(b"half a file\n")
            raise ValueError("parser broke")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    assert not writer_threads()


def test_a_known_digest_is_recorded_without_reading_the_file(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    out = run.stage_dir("mine") / "units.jsonl"
    out.write_text("{}\n")
    stated = "0" * 64  # what the writer said: recorded as is, the file is not read again
    records = run.record_outputs([out], {out: stated})
    assert records["mine/units.jsonl"].sha256 == stated
    assert records["mine/units.jsonl"].size == 3
    records = run.record_outputs([out])
    assert records["mine/units.jsonl"].sha256 == hashlib.sha256(b"{}\n").hexdigest()

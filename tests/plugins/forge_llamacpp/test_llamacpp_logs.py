"""llama.cpp's log reaches Python's logging at the levels llama.cpp meant."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from forge_llamacpp.gguf import inspect_gguf
from forge_llamacpp.logs import LLAMA_CPP_LOGGER, captured_llama_cpp_log, route_llama_cpp_log
from forge_llamacpp.server import LlamaCppError


def test_warnings_are_warnings_and_nothing_is_an_error_on_a_good_load(
    tiny_gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from llama_cpp import Llama

    route_llama_cpp_log()
    with caplog.at_level(logging.DEBUG, logger=LLAMA_CPP_LOGGER):
        Llama(model_path=str(tiny_gguf), vocab_only=True, verbose=True).close()
    records = [r for r in caplog.records if r.name == LLAMA_CPP_LOGGER]
    levels = {r.levelno for r in records}
    # llama-cpp-python's own table showed this warning as an ERROR.
    overflow = [r for r in records if "possible training context overflow" in r.getMessage()]
    assert overflow and all(r.levelno == logging.WARNING for r in overflow)
    assert logging.ERROR not in levels and logging.INFO in levels
    assert all(r.getMessage().strip() and "\n" not in r.getMessage() for r in records)


def test_a_failed_load_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\xff" * 60)
    # llama-cpp-python's own table hid llama.cpp's errors as debug lines.
    with pytest.raises(LlamaCppError, match="failed to read header"):
        inspect_gguf(broken)


def test_captured_lines_are_not_shown(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from llama_cpp import Llama

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\xff" * 60)
    with captured_llama_cpp_log(logging.ERROR) as lines, pytest.raises(ValueError):
        Llama(model_path=str(broken), vocab_only=True, verbose=False)
    assert any("failed to load model" in line for line in lines)
    shown = capfd.readouterr()
    assert "failed to load model" not in shown.err + shown.out
    assert logging.getLogger(LLAMA_CPP_LOGGER).propagate

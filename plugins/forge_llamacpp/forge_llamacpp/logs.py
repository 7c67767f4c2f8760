"""llama.cpp's own log, through Python's :mod:`logging` at the levels llama.cpp meant.

llama-cpp-python installs a log callback whose level table predates llama.cpp's current
``ggml_log_level`` (NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5): it prints warnings
as errors, and hides errors as debug lines, so a model that fails to load says nothing
about why. :func:`route_llama_cpp_log` replaces that callback with one that sends each
line to the ``llama-cpp-python`` logger at its real level (the logger that
``Llama(verbose=...)`` sets: errors only when not verbose, everything when verbose), and
:func:`captured_llama_cpp_log` collects the lines of one load for an error message.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["LLAMA_CPP_LOGGER", "captured_llama_cpp_log", "route_llama_cpp_log"]

#: The logger llama-cpp-python (and this module) route llama.cpp's log lines through.
LLAMA_CPP_LOGGER = "llama-cpp-python"
#: ``ggml_log_level`` → :mod:`logging` level; 5 (CONT) continues the previous line.
GGML_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING}
GGML_ERROR = 4
GGML_CONT = 5

_lock = threading.Lock()
_callback: Any = None  # the ctypes callback, kept alive for as long as llama.cpp holds it
_pending: list[str] = []
_pending_level = logging.INFO


def _level(ggml_level: int) -> int:
    return logging.ERROR if ggml_level >= GGML_ERROR else GGML_LEVELS.get(ggml_level, logging.INFO)


def _emit(ggml_level: int, text: bytes | None) -> None:
    """Log complete lines; a piece without a newline waits for the rest of its line."""
    global _pending_level
    piece = (text or b"").decode("utf-8", errors="replace")
    with _lock:
        if ggml_level != GGML_CONT:
            _pending_level = _level(ggml_level)
        _pending.append(piece)
        if "\n" not in piece:
            return
        *lines, rest = "".join(_pending).split("\n")
        _pending[:] = [rest] if rest else []
        level = _pending_level
    logger = logging.getLogger(LLAMA_CPP_LOGGER)
    for line in lines:
        if line.strip():
            logger.log(level, line)


def route_llama_cpp_log() -> None:
    """Send llama.cpp's log to the ``llama-cpp-python`` logger at its real levels (once)."""
    global _callback
    import llama_cpp  # importing it installs llama-cpp-python's callback: ours replaces it

    with _lock:
        if _callback is not None:
            return
        _callback = llama_cpp.llama_log_callback(
            lambda level, text, user_data: _emit(int(level), text)
        )
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


@contextmanager
def captured_llama_cpp_log(level: int = logging.WARNING) -> Iterator[list[str]]:
    """Collect llama.cpp's lines at ``level`` and above instead of showing them."""
    route_llama_cpp_log()
    lines: list[str] = []
    logger = logging.getLogger(LLAMA_CPP_LOGGER)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(level)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])  # a Llama(verbose=...) inside sets it
        logger.propagate = saved[1]

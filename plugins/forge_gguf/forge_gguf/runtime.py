"""Run a GGUF through llama.cpp's C API: logits at every position, and greedy decoding.

The high-level ``llama_cpp.Llama`` always loads weights into llama.cpp's "extra"
buffer types: on a CPU that reports AMX it repacks Q8_0/Q4_K weights for the AMX
kernels, and where the hypervisor does not actually run AMX code (this project's
CI VMs) the first batched decode dies with SIGILL. The fidelity check and the
benchmark therefore load through the low-level bindings with
``use_extra_bufts`` off by default: llama.cpp's reference CPU kernels, the same
numerics on every host. ``extra_buffer_types=True`` measures the repacked kernels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from forge_llamacpp.logs import LLAMA_CPP_LOGGER, route_llama_cpp_log


def quiet_llama_cpp() -> None:
    """Show only llama.cpp's errors, unless the application configured its logger already."""
    route_llama_cpp_log()
    logger = logging.getLogger(LLAMA_CPP_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)


class LlamaCppError(RuntimeError):
    """llama.cpp could not load or run a model."""


class LlamaCppModel:
    """One GGUF file with one llama.cpp context of ``n_ctx`` positions."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int,
        threads: int | None = None,
        extra_buffer_types: bool = False,
    ) -> None:
        import llama_cpp

        self._lib: Any = llama_cpp
        quiet_llama_cpp()
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.use_extra_bufts = extra_buffer_types
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise LlamaCppError(f"llama.cpp could not load {path}")
        self.n_ctx = n_ctx
        context = llama_cpp.llama_context_default_params()
        context.n_ctx = context.n_batch = context.n_ubatch = n_ctx
        context.n_threads = context.n_threads_batch = threads or os.cpu_count() or 1
        self._ctx = llama_cpp.llama_init_from_model(self._model, context)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise LlamaCppError(f"llama.cpp could not make a {n_ctx}-token context for {path}")
        self.n_vocab = int(
            llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self._model))
        )

    def _decode(self, ids: list[int], start: int, all_logits: bool) -> None:
        """Decode ``ids`` at positions ``start...``; logits for all of them or the last."""
        lib = self._lib
        if start + len(ids) > self.n_ctx:
            raise LlamaCppError(f"{start + len(ids)} positions exceed the context of {self.n_ctx}")
        batch = lib.llama_batch_init(len(ids), 0, 1)
        try:
            for i, token in enumerate(ids):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = all_logits or i == len(ids) - 1
            batch.n_tokens = len(ids)
            status = lib.llama_decode(self._ctx, batch)
        finally:
            lib.llama_batch_free(batch)
        if status != 0:
            raise LlamaCppError(f"llama_decode returned {status}")

    def _reset(self) -> None:
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx), True)

    def logits(self, ids: list[int]) -> np.ndarray:
        """Next-token logits at every position of ``ids`` (a fresh sequence), float32."""
        self._reset()
        self._decode(ids, 0, all_logits=True)
        pointer = self._lib.llama_get_logits(self._ctx)
        values = np.ctypeslib.as_array(pointer, shape=(len(ids) * self.n_vocab,))
        return values.reshape(len(ids), self.n_vocab).astype(np.float32, copy=True)

    def _last_logits(self) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def greedy(self, prompt: list[int], new_tokens: int) -> list[int]:
        """``new_tokens`` greedy tokens after ``prompt`` (end-of-turn does not stop it)."""
        self._reset()
        self._decode(prompt, 0, all_logits=False)
        generated: list[int] = []
        while len(generated) < new_tokens:
            token = int(np.argmax(self._last_logits()))
            generated.append(token)
            if len(generated) < new_tokens:
                self._decode([token], len(prompt) + len(generated) - 1, all_logits=False)
        return generated

    def close(self) -> None:
        """Free the context and the model."""
        if getattr(self, "_ctx", None):
            self._lib.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            self._lib.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> LlamaCppModel:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

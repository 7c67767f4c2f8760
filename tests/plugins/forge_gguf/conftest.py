"""Session-wide tiny models for the GGUF tests (built once, in code)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf_helpers import build_model, save_trained_adapter


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny_llama"), "llama")


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny_qwen2"), "qwen2")


@pytest.fixture(scope="session")
def llama_adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_trained_adapter(tiny_llama, tmp_path_factory.mktemp("llama_adapter"))

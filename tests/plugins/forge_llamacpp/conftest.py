"""Fixtures of the llama.cpp tests: the tiny GGUF, and one served model per module.

Every server a test starts is stopped by the fixture or the test itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llamacpp_gguf import write_tiny_gguf
from llamacpp_helpers import deploy_request, record_deployment

from forge_core.contracts import DeployResult


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bigram chat model (answers "hi", then <|end|>)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "model-F32.gguf")


@pytest.fixture(scope="module")
def served(
    tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, DeployResult]]:
    """The tiny model served through the plugin for a whole test module; stopped after."""
    from forge_core.plugins import PluginRegistry
    from forge_llamacpp.server import stop_server

    run = tmp_path_factory.mktemp("runs") / "20250101-000000"
    request = deploy_request(tiny_gguf, run)
    result = DeployResult.model_validate(PluginRegistry().call("deploy", "llamacpp", request))
    try:
        record_deployment(run, result)
        yield run, result
    finally:
        stop_server(run / "deploy")

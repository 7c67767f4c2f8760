"""Fixtures for the core tests: a toy plugin, a toy repository, toy settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.config import ForgeSettings
from forge_core.plugins import PluginRegistry
from tests.core.toy_plugin import ToyPlugin


@pytest.fixture
def toy_plugin() -> ToyPlugin:
    return ToyPlugin()


@pytest.fixture
def toy_registry(toy_plugin: ToyPlugin) -> PluginRegistry:
    registry = PluginRegistry(entry_points=False)
    registry.register(toy_plugin, "toy", distribution="toy-dist", version="1.2.3")
    return registry


@pytest.fixture
def toy_settings(tmp_path: Path) -> ForgeSettings:
    return ForgeSettings.model_validate(
        {
            "runs_dir": str(tmp_path / "runs"),
            "synth": {"synthesizer": "toy"},
            "validation": {"min_tokens": 1},
            "train": {"trainer": "toy"},
            "eval": {"backend": "toy", "metrics": ["toy_metric"]},
            "export": {"exporter": "toy"},
            "deploy": {"target": "toy"},
        }
    )


@pytest.fixture
def toy_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for index in range(6):
        folder = repo / f"pkg{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{index}.toy").write_text(
            "".join(f"def f{index}_{n}\nbody\n" for n in range(3))
        )
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / "skip.toy").write_text("def vendored\n")
    (repo / "README.md").write_text("not code\n")
    return repo

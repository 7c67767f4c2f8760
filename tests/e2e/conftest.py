"""Fixtures for end-to-end tests: the three-language sample repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SAMPLE_REPO = Path(__file__).resolve().parents[1] / "fixtures" / "sample_repo"


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    """A fresh copy of tests/fixtures/sample_repo (Python, JavaScript, Go)."""
    target = tmp_path / "sample_repo"
    shutil.copytree(SAMPLE_REPO, target)
    return target

"""Session fixtures over the corpus of :mod:`raft_corpus` (mined once, synthesized once)."""

from __future__ import annotations

import pytest
from raft_corpus import corpus_files, mine, synthesize

from forge_core.contracts import CodeUnit, Example


@pytest.fixture(scope="session")
def units() -> list[CodeUnit]:
    """Every unit of the fixture corpus."""
    return mine(corpus_files())


@pytest.fixture(scope="session")
def by_id(units: list[CodeUnit]) -> dict[str, CodeUnit]:
    """Units by id."""
    return {unit.id: unit for unit in units}


@pytest.fixture(scope="session")
def examples(units: list[CodeUnit]) -> list[Example]:
    """Examples with the default settings, seed 0."""
    return synthesize(units)

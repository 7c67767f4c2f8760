"""The acceptance test: on a sample of the standard library, the units are exactly `ast`'s.

For each sampled file, every module-level function, class and method that the stdlib
``ast`` module finds (definitions inside module- or class-level ``if``/``try``/``with``/
``for``/``while``/``match`` included, as in the parser) must be found with exactly
``ast``'s kind, qualified name, line span (first decorator → ``end_lineno``) and
``ast.get_docstring``; and the parser must find nothing else. ``bench/mining_python_stdlib.py``
runs the same comparison on every stdlib file.
"""

from __future__ import annotations

import sysconfig
import warnings
from pathlib import Path

import pytest

from forge_python.astref import Comparison, ast_units, compare, parser_units, stdlib_files
from forge_python.parser import parse_source

SAMPLE_SIZE = 40


def _ast_parses(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast_units(path.read_bytes())
    except (SyntaxError, ValueError):
        return False
    return True


def stdlib_sample() -> list[Path]:
    """Every Nth file of the sorted stdlib listing (the next one when `ast` rejects it)."""
    files = stdlib_files()
    stride = max(len(files) // SAMPLE_SIZE, 1)
    sample: list[Path] = []
    for start in range(0, len(files), stride):
        candidate = next((f for f in files[start : start + stride] if _ast_parses(f)), None)
        if candidate is not None:
            sample.append(candidate)
    return sample[:SAMPLE_SIZE]


SAMPLE = stdlib_sample()
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_sample_is_large_enough() -> None:
    """About forty files, spread over the whole standard library."""
    assert len(SAMPLE) >= SAMPLE_SIZE * 3 // 4
    assert len({path.parent for path in SAMPLE}) > 5


@pytest.mark.parametrize("path", SAMPLE, ids=[p.relative_to(STDLIB).as_posix() for p in SAMPLE])
def test_units_match_ast_exactly(path: Path) -> None:
    """Recall and precision 1.0 against `ast`, with exact spans and docstrings."""
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ast_units(data)
    comparison = compare(
        expected, parser_units(parse_source(path.name, data)), path.name, Comparison()
    )
    assert comparison.examples == []
    assert comparison.recall == comparison.precision == 1.0
    assert comparison.matched == len(expected)

"""Mine every Python stdlib file with forge-python and compare with the stdlib ``ast``.

Prints recall and precision of exact units (kind, qualified name, line span, docstring),
mismatches by kind, and parsing speed. Files ``ast`` cannot parse are skipped.

    .venv/bin/python bench/mining_python_stdlib.py [--show N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from forge_python.astref import Comparison, ast_units, compare, parser_units, stdlib_files
from forge_python.parser import parse_source


def run(files: list[Path]) -> tuple[Comparison, int, float, int]:
    """Compare every file; return the comparison, files compared, parse seconds, bytes."""
    comparison = Comparison()
    parsed = 0
    parse_seconds = 0.0
    total_bytes = 0
    for path in files:
        data = path.read_bytes()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = ast_units(data)
        except (SyntaxError, ValueError):
            continue
        started = time.perf_counter()
        result = parse_source(path.as_posix(), data)
        parse_seconds += time.perf_counter() - started
        parsed += 1
        total_bytes += len(data)
        compare(expected, parser_units(result), path.as_posix(), comparison)
    return comparison, parsed, parse_seconds, total_bytes


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--show", type=int, default=20, help="mismatches to print")
    args = options.parse_args(argv)

    files = stdlib_files()
    comparison, parsed, seconds, total_bytes = run(files)
    print(f"python {sys.version.split()[0]}: {len(files)} stdlib files, {parsed} parsed by ast")
    print(f"units: ast {comparison.expected}, parser {comparison.found}")
    print(f"exact matches: {comparison.matched}")
    print(f"recall    {comparison.recall:.6f}")
    print(f"precision {comparison.precision:.6f}")
    print(
        f"mismatches: span {comparison.span_mismatches}, "
        f"docstring {comparison.docstring_mismatches}, "
        f"missing {comparison.missing}, extra {comparison.extra}"
    )
    print(
        f"speed: {parsed / seconds:.1f} files/s, {total_bytes / seconds / 1e6:.2f} MB/s "
        f"({seconds:.2f} s parsing, one process)"
    )
    for line in comparison.examples[: args.show]:
        print("  ", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

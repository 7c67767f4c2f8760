"""The fixture corpus and helpers: a small multi-language repository mined with the real parsers.

The corpus is this plugin's own fixtures (a Python package, a JavaScript file
and a Go package, with hand-checked facts) plus every fixture file the language
plugins ship, mined through ``PluginRegistry().call("parse", ...)`` exactly as
the ``mine`` stage does, with ids from ``assign_unit_ids``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from forge_core.contracts import CodeUnit, Example, ParseRequest, SynthesizeRequest
from forge_core.mining import assign_unit_ids
from forge_core.plugins import PluginRegistry
from forge_raft.documents import TRUNCATED
from forge_raft.synthesis import synthesize_examples

HERE = Path(__file__).parent
PLUGIN_TESTS = HERE.parent
LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".go": "go",
}
#: Mined under a test path so the parser flags it as test code (pytest must not collect it).
TEST_CODE = {"python/inventory/checks_stock.py": "python/tests/test_stock.py"}
BROKEN_PYTHON = b'"""Broken."""\n\n\ndef fine():\n    return 1\n\n\ndef broken(:\n    return 2\n'
DOCUMENT = re.compile(
    r'<DOCUMENT path="(?P<path>[^"]*)" name="(?P<name>[^"]*)" lines="(?P<lines>\d+-\d+)">\n'
    r"(?P<body>.*?)\n</DOCUMENT>",
    re.DOTALL,
)


def corpus_files() -> list[tuple[str, str, bytes]]:
    """(repository path, language, bytes) of every fixture file."""
    files = []
    own = HERE / "fixtures"
    for path in sorted(own.rglob("*")):
        if path.suffix in LANGUAGES:
            relative = path.relative_to(own).as_posix()
            files.append(
                (TEST_CODE.get(relative, relative), LANGUAGES[path.suffix], path.read_bytes())
            )
    files.append(("python/inventory/broken.py", "python", BROKEN_PYTHON))
    for plugin in ("forge_python", "forge_javascript", "forge_go"):
        for path in sorted((PLUGIN_TESTS / plugin).rglob("fixtures/**/*")):
            if path.is_file() and path.suffix in LANGUAGES:
                relative = path.relative_to(PLUGIN_TESTS / plugin).as_posix()
                name = f"{plugin}/{relative.replace('fixtures/', '', 1)}"
                files.append((name, LANGUAGES[path.suffix], path.read_bytes()))
    return files


def mine(files: list[tuple[str, str, bytes]]) -> list[CodeUnit]:
    """Parse files with the installed language plugins and give the units their ids."""
    registry = PluginRegistry()
    units: list[CodeUnit] = []
    for path, language, data in files:
        request = ParseRequest(path=path, language=language, source=data)
        units.extend(registry.call("parse", language, request).units)
    return assign_unit_ids(units)


def synthesize(units: list[CodeUnit], seed: int = 0, **settings: object) -> list[Example]:
    """Run the synthesis on ``units`` with ``synth`` settings."""
    return synthesize_examples(
        SynthesizeRequest(units=units, settings=settings, seed=seed)
    ).examples


@dataclass(frozen=True)
class ShownDocument:
    """One document as the user turn shows it."""

    path: str
    name: str
    body: str
    lines: str = ""
    """The header's line span, ``start-end``."""


def documents_of(example: Example) -> list[ShownDocument]:
    """The documents in an example's user turn."""
    shown = []
    for match in DOCUMENT.finditer(example.messages[1].content):
        body = match["body"].removesuffix(f"\n{TRUNCATED}")
        shown.append(ShownDocument(match["path"], match["name"], body, match["lines"]))
    return shown


def find(examples: list[Example], question_type: str, oracle_id: str) -> Example:
    """The example of a type about one unit (whichever context it drew)."""
    for example in examples:
        if example.question_type == question_type and example.oracle_id == oracle_id:
            return example
    raise AssertionError(f"no {question_type} example about {oracle_id}")

"""The ``mine`` stage's work: walk a repository and parse its files into units."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from forge_core.config import MineSettings
from forge_core.contracts import CodeUnit, LanguageSpec, ParseRequest, ParseResult

#: Folders never mined: vendored code, build output, caches, environments.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "vendor",
        ".venv",
        "venv",
        "env",
        "dist",
        "build",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".eggs",
        "runs",
    }
)


class RepositoryError(ValueError):
    """The repository path cannot be mined (not a directory, unreadable, ...)."""


@dataclass(frozen=True)
class SourceFile:
    """A file selected for parsing."""

    path: Path
    relative: str
    language: str
    size: int


@dataclass
class WalkReport:
    """What the walk selected and what it skipped, by reason."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def extension_map(languages: dict[str, LanguageSpec]) -> dict[str, str]:
    """File extension → language name."""
    return {ext.lower(): name for name, spec in languages.items() for ext in spec.extensions}


def walk_repository(
    repo: Path, languages: dict[str, LanguageSpec], settings: MineSettings
) -> WalkReport:
    """Select the files to parse, in a deterministic (sorted) order."""
    if not repo.exists():
        raise RepositoryError(f"{repo} does not exist")
    if not repo.is_dir():
        raise RepositoryError(f"{repo} is not a directory; give the repository's root folder")
    root = repo.resolve()
    by_extension = extension_map(languages)
    report = WalkReport()
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            language = by_extension.get(path.suffix.lower())
            if language is None:
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                report.skip("symlink outside the repository")
                continue
            try:
                size = path.stat().st_size
            except OSError:
                report.skip("unreadable")
                continue
            if size > settings.max_file_bytes:
                report.skip("larger than mine.max_file_bytes")
                continue
            relative = path.relative_to(root).as_posix()
            report.files.append(SourceFile(path, relative, language, size))
    return report


def parse_files(
    files: list[SourceFile],
    parse: Callable[[ParseRequest], ParseResult],
    on_file: Callable[[], None] = lambda: None,
) -> Iterator[tuple[SourceFile, ParseResult]]:
    """Parse each file with the language's plugin."""
    for source_file in files:
        data = source_file.path.read_bytes()
        result = parse(
            ParseRequest(path=source_file.relative, language=source_file.language, source=data)
        )
        on_file()
        yield source_file, result


def assign_unit_ids(units: list[CodeUnit]) -> list[CodeUnit]:
    """Give each unit a stable id ``path::qualified_name`` (``~2``, ``~3`` for repeats)."""
    seen: dict[str, int] = {}
    for unit in units:
        base = f"{unit.path}::{unit.qualified_name}"
        seen[base] = seen.get(base, 0) + 1
        unit.id = base if seen[base] == 1 else f"{base}~{seen[base]}"
    return units

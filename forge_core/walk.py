"""The repository walk shared by every language: which files get parsed, and why not.

Rules, in order: vendored, build and hidden folders are never entered; paths
matched by any ``.gitignore`` on the way down (nested ones apply below their
folder) or by ``mine.exclude`` are skipped; symlinks are followed only when
they stay inside the repository, and a folder reached twice (a symlink loop) is
entered once; files whose extension no installed language claims are ignored
silently; the rest are skipped with a counted reason when too large, binary,
unreadable or not UTF-8 (the last two are found when the file is read for
parsing, by :func:`classify_content`). The order is deterministic (sorted paths).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

import pathspec

from forge_core.contracts import LanguageSpec

#: Folders never mined: vendored code, build output, caches, environments.
SKIPPED_DIRS = frozenset(
    {
        "node_modules",
        "vendor",
        "third_party",
        "venv",
        "env",
        "dist",
        "build",
        "__pycache__",
        "site-packages",
        "bower_components",
        "runs",
    }
)
#: A folder entry's name, the order of a walk.
_ENTRY_NAME = attrgetter("name")
#: Bytes read to decide whether a file is binary.
BINARY_SNIFF_BYTES = 8192


class RepositoryError(ValueError):
    """The repository path cannot be mined (missing, not a directory, unreadable)."""


@dataclass(frozen=True)
class SourceFile:
    """A file selected for parsing."""

    location: str
    """Where the file is, as the OS takes it (``open(location)``): a string, because a
    ``Path`` costs microseconds per file to build and to turn back into a string."""
    relative: str
    language: str
    size: int
    mtime_ns: int = 0
    """Modification time when walked (part of the ``mine`` stage's input fingerprint)."""

    @property
    def path(self) -> Path:
        """:attr:`location` as a ``Path``."""
        return Path(self.location)


@dataclass
class WalkResult:
    """The files selected, and the files skipped by reason."""

    root: Path
    files: list[SourceFile] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, relative: str) -> None:
        """Count a skipped file and keep the first path seen for each reason."""
        self.skipped[reason] += 1
        self.examples.setdefault(reason, relative)


def extension_map(languages: dict[str, LanguageSpec]) -> dict[str, str]:
    """File extension (lower case, with the dot) → language name."""
    return {ext.lower(): name for name, spec in languages.items() for ext in spec.extensions}


def _gitignore(folder: Path) -> pathspec.GitIgnoreSpec | None:
    path = folder / ".gitignore"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines)


class _Ignores:
    """The stack of ``.gitignore`` specs that apply to a folder."""

    def __init__(self, root_patterns: list[str]) -> None:
        self.specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []
        if root_patterns:
            self.specs.append(("", pathspec.GitIgnoreSpec.from_lines(root_patterns)))

    def child(self, relative_dir: str, folder: Path) -> _Ignores:
        spec = _gitignore(folder)
        if spec is None:
            return self
        copy = _Ignores([])
        copy.specs = [*self.specs, (relative_dir, spec)]
        return copy

    def ignored(self, relative: str, is_dir: bool) -> bool:
        for base, spec in self.specs:
            if base and not relative.startswith(base + "/"):
                continue
            local = relative[len(base) + 1 :] if base else relative
            if spec.match_file(local + "/" if is_dir else local):
                return True
        return False


def classify_content(data: bytes) -> str | None:
    """Why file content cannot be mined (binary, not UTF-8), or None."""
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return "binary"
    if data.isascii():  # most source files: valid UTF-8 without decoding a copy
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    return None


def extension_of(name: str) -> str:
    """``os.path.splitext(name)[1].lower()`` for a file name (no folder), without its cost.

    Dots that start the name do not start an extension (``.bashrc`` has none).
    """
    dot = name.rfind(".")
    if dot <= 0 or (name[0] == "." and not name[:dot].lstrip(".")):
        return ""
    return name[dot:].lower()


def check_repository(repo: Path) -> None:
    """Raise :class:`RepositoryError` when ``repo`` is not a folder that can be mined."""
    if not repo.exists():
        raise RepositoryError(f"{repo} does not exist; give the path of a repository folder")
    if not repo.is_dir():
        raise RepositoryError(f"{repo} is not a directory; give the repository's root folder")


def walk_repository(
    repo: Path,
    languages: dict[str, LanguageSpec],
    *,
    max_file_bytes: int = 1_000_000,
    exclude: list[str] | None = None,
) -> WalkResult:
    """Select the files to parse under ``repo`` (see the module docstring)."""
    check_repository(repo)
    root = repo.resolve()
    by_extension = extension_map(languages)
    result = WalkResult(root=root)
    visited: set[str] = set()
    # (folder, its real path, path relative to the root, the ignore rules that apply).
    # The real path of a folder reached without a symlink is its parent's plus its name:
    # only symlinks need resolving, so loops are caught without a resolve per folder.
    stack: list[tuple[str, str, str, _Ignores]] = [
        (str(root), str(root), "", _Ignores(list(exclude or [])))
    ]
    while stack:
        folder, real, relative_dir, ignores = stack.pop()
        if real in visited:
            result.skip("symlink loop or repeated folder", relative_dir or ".")
            continue
        visited.add(real)
        try:
            with os.scandir(folder) as iterator:
                entries = sorted(iterator, key=_ENTRY_NAME)
        except OSError:
            result.skip("unreadable folder", relative_dir or ".")
            continue
        if any(entry.name == ".gitignore" for entry in entries):
            ignores = ignores.child(relative_dir, Path(folder))
        prefix = real if real.endswith(os.sep) else real + os.sep
        subfolders: list[tuple[str, str, str, _Ignores]] = []
        for entry in entries:
            name = entry.name
            relative = f"{relative_dir}/{name}" if relative_dir else name
            real_entry = prefix + name
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.exists():
                    result.skip("broken symlink", relative)
                    continue
                if not target.is_relative_to(root):
                    result.skip("symlink outside the repository", relative)
                    continue
                real_entry = str(target)
            if entry.is_dir():
                if name.startswith(".") or name in SKIPPED_DIRS:
                    continue
                if not ignores.ignored(relative, is_dir=True):
                    subfolders.append((entry.path, real_entry, relative, ignores))
                continue
            language = by_extension.get(extension_of(name))
            if language is None or not entry.is_file():
                continue
            if ignores.ignored(relative, is_dir=False):
                result.skip("ignored by .gitignore or mine.exclude", relative)
                continue
            status = entry.stat()
            size = status.st_size
            if size > max_file_bytes:
                result.skip(f"larger than {max_file_bytes} bytes (mine.max_file_bytes)", relative)
                continue
            result.files.append(
                SourceFile(entry.path, relative, language, size, status.st_mtime_ns)
            )
        stack.extend(reversed(subfolders))
    result.files.sort(key=lambda source: source.relative)
    return result

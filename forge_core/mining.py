"""The ``mine`` stage's work: parse the walked files into code units.

Each file is read once: its content is checked (binary, UTF-8), hashed, and
looked up in a content-addressed parse cache keyed by (parser plugin and
version, path, content hash), so re-mining an unchanged file costs a read and
a hash. Large repositories are parsed by several processes: this one and
spawned helpers, each helper with its own plugin registry (plugins registered
in-process only are parsed in this process alone).
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from forge_core.codeinfo import trusted_model
from forge_core.contracts import CodeUnit, ParseRequest, ParseResult, UnitQuality
from forge_core.files import write_text_atomic
from forge_core.mining_helpers import mine_shared
from forge_core.plugins import PluginRegistry
from forge_core.walk import RepositoryError, SourceFile, WalkResult, classify_content

__all__ = [
    "FileOutcome",
    "MiningReport",
    "ParseCache",
    "RepositoryError",
    "assign_unit_ids",
    "choose_workers",
    "mine_files",
    "units_as_jsonl",
]

#: Below this many bytes of source, worker start-up costs more than it saves.
PARALLEL_MIN_BYTES = 2_000_000
#: Files handed to a worker at a time.
CHUNK_FILES = 16
#: Units whose (language, kind) the report keeps before counting them.
PENDING_KINDS = 65_536
#: (language, kind) of a unit, read at C speed.
_LANGUAGE_AND_KIND = attrgetter("language", "kind")


class ParseCache:
    """Parse results on disk, addressed by parser, path and content hash."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    @staticmethod
    def key(parser_tag: str, relative: str, digest: str) -> str:
        """The cache key of one file's parse."""
        return hashlib.sha256(f"{parser_tag}\0{relative}\0{digest}".encode()).hexdigest()

    def _path(self, key: str) -> Path | None:
        return self.folder / key[:2] / f"{key}.json" if self.folder else None

    def get(self, key: str) -> ParseResult | None:
        """The cached result, or None (absent or unreadable: parse again)."""
        path = self._path(key)
        if path is None:
            return None
        try:
            return ParseResult.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            return None

    def put(self, key: str, result: ParseResult) -> None:
        """Store a result atomically (a crash never leaves half an entry)."""
        path = self._path(key)
        if path is not None:
            write_text_atomic(path, result.model_dump_json())


@dataclass
class FileOutcome:
    """What mining one file gave."""

    relative: str
    language: str
    size: int
    units: list[CodeUnit] = field(default_factory=list)
    skipped: str | None = None
    cached: bool = False
    has_syntax_error: bool = False
    unit_lines: bytes | None = None
    """The units as JSON lines, ids assigned, in place of ``units`` after :meth:`serialise`."""
    unit_kinds: list[tuple[str, str]] = field(default_factory=list)
    """(language, kind) of each unit in ``unit_lines``."""

    def serialise(self) -> None:
        """Turn ``units`` into ``unit_lines``: helper processes do it, so the main process
        only writes bytes (pickling bytes back costs nothing next to pickling models)."""
        self.unit_kinds = [(language, str(kind)) for language, kind in self.kinds()]
        self.unit_lines = units_as_jsonl(self.units)
        self.units = []

    def kinds(self) -> list[tuple[str, str]]:
        """(language, kind) of each unit of the file (a kind is a ``UnitKind``, a ``str``)."""
        if self.unit_lines is not None:
            return self.unit_kinds
        return list(map(_LANGUAGE_AND_KIND, self.units))

    def jsonl(self) -> bytes:
        """The file's units as JSON lines, ids assigned."""
        return self.unit_lines if self.unit_lines is not None else units_as_jsonl(self.units)


@dataclass
class MiningReport:
    """Counts for ``mine/report.json``."""

    files: int = 0
    bytes: int = 0
    units: int = 0
    cached_files: int = 0
    files_with_syntax_errors: int = 0
    workers: int = 1
    kind_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Units per (language, kind) (a kind may be a ``UnitKind`` or its value, two keys
    that :attr:`by_language` and :attr:`by_kind` add up as one)."""
    pending_kinds: list[tuple[str, str]] = field(default_factory=list)
    """(language, kind) of the units added since they were last counted: counting tens of
    thousands at once costs less than a count per file."""
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_examples: dict[str, str] = field(default_factory=dict)

    def add(self, outcome: FileOutcome) -> None:
        """Count one file's outcome."""
        if outcome.skipped:
            self.skipped[outcome.skipped] += 1
            self.skipped_examples.setdefault(outcome.skipped, outcome.relative)
            return
        self.files += 1
        self.bytes += outcome.size
        self.cached_files += outcome.cached
        self.files_with_syntax_errors += outcome.has_syntax_error
        kinds = outcome.kinds()
        self.units += len(kinds)
        self.pending_kinds += kinds
        if len(self.pending_kinds) >= PENDING_KINDS:
            self._count_pending()

    def _count_pending(self) -> None:
        self.kind_counts.update(self.pending_kinds)
        self.pending_kinds.clear()

    @property
    def by_language(self) -> Counter[str]:
        """Units per language."""
        return self._totals(lambda language, _: language)

    @property
    def by_kind(self) -> Counter[str]:
        """Units per ``language.kind``."""
        return self._totals(lambda language, kind: f"{language}.{kind}")

    def _totals(self, key: Callable[[str, str], str]) -> Counter[str]:
        """Units per ``key(language, kind)``."""
        self._count_pending()
        counts: Counter[str] = Counter()
        for (language, kind), count in self.kind_counts.items():
            counts[key(language, kind)] += count
        return counts

    def as_json(self) -> dict[str, Any]:
        """The report's JSON shape."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "units": self.units,
            "cached_files": self.cached_files,
            "files_with_syntax_errors": self.files_with_syntax_errors,
            "workers": self.workers,
            "units_by_language": dict(sorted(self.by_language.items())),
            "units_by_kind": dict(sorted(self.by_kind.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_examples": dict(sorted(self.skipped_examples.items())),
        }


def mine_file(
    source: SourceFile,
    parse: Callable[[ParseRequest], ParseResult],
    parser_tag: str,
    cache: ParseCache,
) -> FileOutcome:
    """Read, check, look up and (if needed) parse one file."""
    outcome = FileOutcome(source.relative, source.language, source.size)
    try:
        with open(source.location, "rb", buffering=0) as handle:  # unbuffered: one read
            data = handle.read()
    except OSError as exc:
        outcome.skipped = f"unreadable ({exc.strerror or exc})"
        return outcome
    outcome.skipped = classify_content(data)
    if outcome.skipped:
        return outcome
    key = None
    if cache.folder is not None:  # no cache, no need for the content hash
        key = ParseCache.key(parser_tag, source.relative, hashlib.sha256(data).hexdigest())
    result = cache.get(key) if key else None
    outcome.cached = result is not None
    if result is None:
        request = trusted_model(
            ParseRequest, {"path": source.relative, "language": source.language, "source": data}
        )
        result = ParseResult.model_validate(parse(request))
        if key:
            cache.put(key, result)
    outcome.units = result.units
    outcome.has_syntax_error = result.has_syntax_error
    return outcome


def choose_workers(requested: int, walk: WalkResult) -> int:
    """``mine.workers``, or (0) one per core when the repository is large enough."""
    if requested > 0:
        return requested
    total = sum(source.size for source in walk.files)
    if total < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def mine_files(
    walk: WalkResult,
    registry: PluginRegistry,
    *,
    workers: int,
    cache: ParseCache,
    on_file: Callable[[int], None] = lambda n: None,
) -> Iterator[FileOutcome]:
    """Mine every walked file, in the walk's order, sequentially or in processes."""
    gc.disable()  # tens of thousands of long-lived units: collections only cost time here
    try:
        yield from _mine_files(walk, registry, workers=workers, cache=cache, on_file=on_file)
    finally:
        gc.enable()


def _mine_files(
    walk: WalkResult,
    registry: PluginRegistry,
    *,
    workers: int,
    cache: ParseCache,
    on_file: Callable[[int], None],
) -> Iterator[FileOutcome]:
    languages = sorted({source.language for source in walk.files})
    plugins = {language: registry.find("parse", language) for language in languages}
    versions = registry.versions()
    tags = {lang: f"{name}-{versions.get(name, 'unknown')}" for lang, name in plugins.items()}
    in_process_only = any(registry.info(name).origin == "in-process" for name in plugins.values())
    callers = {language: registry.caller("parse", language) for language in languages}

    def mine_here(source: SourceFile) -> FileOutcome:
        return mine_file(source, callers[source.language], tags[source.language], cache)

    if workers <= 1 or in_process_only or len(walk.files) < 2:
        for source in walk.files:
            yield mine_here(source)
            on_file(1)
        return
    size = max(1, min(CHUNK_FILES, len(walk.files) // (workers * 4)))
    chunks = [walk.files[i : i + size] for i in range(0, len(walk.files), size)]
    # ``workers`` processes in all: this one and ``workers - 1`` helpers.
    for outcomes in mine_shared(
        chunks,
        tags,
        mine_here,
        helpers=workers - 1,
        disabled=sorted(registry.disabled),
        cache_folder=str(cache.folder) if cache.folder else None,
    ):
        yield from outcomes
        on_file(len(outcomes))


def units_as_jsonl(units: list[CodeUnit]) -> bytes:
    """One file's units as JSON lines (``units.jsonl``), ids assigned.

    Ids start with the file's path, so ids given file by file equal ids given to the
    whole repository at once. The bytes are exactly pydantic's ``model_dump_json``,
    written by orjson from the validated values (three times faster: a large
    repository has tens of thousands of units).
    """
    return b"".join([unit_json_line(unit) for unit in assign_unit_ids(units)])


def unit_json_line(unit: CodeUnit) -> bytes:
    """One unit as a JSON line, byte for byte ``unit.model_dump_json() + "\\n"``."""
    values = unit.__dict__
    if type(values["quality"]) is UnitQuality:  # not so in a unit built without validation
        try:
            return orjson.dumps(values, default=_quality_fields, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # what orjson does not write as pydantic does (a lone surrogate, …)
            pass
    return CodeUnit.__pydantic_serializer__.to_json(unit) + b"\n"


def _quality_fields(value: object) -> dict[str, Any]:
    """How orjson writes a unit's quality: its fields (any other object is refused)."""
    if type(value) is UnitQuality:
        return value.__dict__
    raise TypeError(f"not written by orjson: {type(value).__name__}")


def assign_unit_ids(units: Iterable[CodeUnit]) -> list[CodeUnit]:
    """Give each unit a stable id ``path::qualified_name`` (``~2``, ``~3`` for repeats)."""
    seen: dict[str, int] = {}
    result = []
    for unit in units:
        base = f"{unit.path}::{unit.qualified_name}"
        count = seen.get(base, 0) + 1
        seen[base] = count
        # What ``unit.id = …`` does (the contract validates no assignment), minus its cost.
        unit.__dict__["id"] = base if count == 1 else f"{base}~{count}"
        unit.__pydantic_fields_set__.add("id")
        result.append(unit)
    return result

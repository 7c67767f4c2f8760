"""The run directory: one folder per run, one sub-folder per stage, manifest last.

``runs/<run-id>/<stage>/manifest.json`` is written atomically and only after
every output of the stage is in place, so its presence means the stage
finished. A stage is *fresh* (skipped on the next run) when its manifest
parses, its recorded outputs are all present with their recorded hashes, and
its input hashes and config section are unchanged. Anything else (no manifest,
a corrupt one, a missing or altered output) means the stage is redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from forge_core import __version__
from forge_core.files import iter_files, sha256_file, sha256_json, write_json_atomic

#: The stages, in pipeline order; each is a folder of the run directory.
STAGES: tuple[str, ...] = ("mine", "synth", "validate", "train", "eval", "export", "deploy")
MANIFEST = "manifest.json"


class RunError(RuntimeError):
    """A run directory problem (missing prerequisite stage, concurrent use, ...)."""


class OutputRecord(BaseModel):
    """One output file of a stage, as recorded in its manifest."""

    sha256: str
    size: int


class StageManifest(BaseModel):
    """What a finished stage did: written last, it marks the stage complete."""

    stage: str
    forge_version: str = __version__
    inputs: dict[str, str] = Field(description="Input name → content hash.")
    config: dict[str, Any] = Field(description="The stage's config section.")
    config_hash: str
    outputs: dict[str, OutputRecord] = Field(description="Run-relative path → record.")
    metrics: dict[str, Any] = Field(default_factory=dict)
    plugins: dict[str, str] = Field(default_factory=dict, description="Plugin → version.")
    started_at: datetime
    finished_at: datetime
    wall_seconds: float


class RunInfo(BaseModel):
    """``run.json``: what the run is about."""

    id: str
    created_at: datetime
    repo: str | None = None
    forge_version: str = __version__


class RunDir:
    """A run directory on disk."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).resolve()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def id(self) -> str:
        """The run id (the folder name)."""
        return self.path.name

    @classmethod
    def create(cls, runs_dir: Path) -> RunDir:
        """Make a new run folder named by the current UTC time."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        runs_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ["", *(f"-{n}" for n in range(2, 1000))]:
            candidate = runs_dir / f"{stamp}{suffix}"
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return cls(candidate)
        raise RunError(f"cannot create a new run under {runs_dir}")

    # ------------------------------------------------------------------ run-level files

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    def read_info(self) -> RunInfo | None:
        """Return ``run.json``, or None when absent or unreadable."""
        try:
            return RunInfo.model_validate_json(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            return None

    def write_info(self, repo: Path | None) -> RunInfo:
        """Record the run's repository (keeping the creation time of an existing run)."""
        existing = self.read_info()
        info = RunInfo(
            id=self.id,
            created_at=existing.created_at if existing else datetime.now(UTC),
            repo=str(repo) if repo else (existing.repo if existing else None),
        )
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.info_path, info.model_dump(mode="json"))
        return info

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def read_config(self) -> dict[str, Any] | None:
        """Return the saved resolved configuration, if any."""
        import json

        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_config(self, config: dict[str, Any]) -> None:
        """Save the fully resolved configuration."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.config_path, config)

    # ------------------------------------------------------------------ stages

    def stage_dir(self, stage: str) -> Path:
        """Return (and create) a stage's folder."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        folder = self.path / stage
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def manifest_path(self, stage: str) -> Path:
        return self.path / stage / MANIFEST

    def read_manifest(self, stage: str) -> StageManifest | None:
        """Return a stage's manifest, or None if it is absent or corrupt."""
        try:
            text = self.manifest_path(stage).read_text(encoding="utf-8")
            return StageManifest.model_validate_json(text)
        except (OSError, ValueError):
            return None

    def completed(self, stage: str) -> StageManifest | None:
        """Return the manifest if the stage finished and its outputs are intact."""
        manifest = self.read_manifest(stage)
        if manifest is None or manifest.stage != stage:
            return None
        for relative, record in manifest.outputs.items():
            path = self.path / relative
            try:
                if path.stat().st_size != record.size or sha256_file(path) != record.sha256:
                    return None
            except OSError:
                return None
        return manifest

    def require(self, stage: str) -> StageManifest:
        """Return a completed stage's manifest or explain which command to run first."""
        manifest = self.completed(stage)
        if manifest is None:
            command = "forge mine REPO" if stage == "mine" else f"forge {stage}"
            raise RunError(
                f"stage {stage!r} has not completed in {self.path}; "
                f"run `{command} --run-dir {self.path}` first"
            )
        return manifest

    def is_fresh(self, stage: str, inputs: dict[str, str], config: dict[str, Any]) -> bool:
        """True when the stage completed with the same inputs and config section."""
        manifest = self.completed(stage)
        return (
            manifest is not None
            and manifest.inputs == inputs
            and manifest.config_hash == sha256_json(config)
        )

    def invalidate(self, stage: str) -> None:
        """Remove a stage's manifest before redoing it (outputs stay, for resuming)."""
        self.manifest_path(stage).unlink(missing_ok=True)

    def record_outputs(
        self, paths: list[Path], digests: Mapping[Path, str] | None = None
    ) -> dict[str, OutputRecord]:
        """Hash output files (folders are expanded) into manifest records.

        ``digests``: sha256 of files the stage hashed as it wrote them (not read again).
        """
        known = {path.resolve(): digest for path, digest in (digests or {}).items()}
        records: dict[str, OutputRecord] = {}
        for path in paths:
            for file in iter_files(path):
                resolved = file.resolve()
                relative = resolved.relative_to(self.path).as_posix()
                digest = known.get(resolved) or sha256_file(file)
                records[relative] = OutputRecord(sha256=digest, size=file.stat().st_size)
        return records

    def finish(
        self,
        stage: str,
        *,
        inputs: dict[str, str],
        config: dict[str, Any],
        outputs: list[Path],
        metrics: dict[str, Any],
        plugins: dict[str, str],
        started: float,
        digests: Mapping[Path, str] | None = None,
    ) -> StageManifest:
        """Write the stage's manifest, last and atomically.

        ``digests``: sha256 of outputs hashed as they were written (see
        :meth:`record_outputs`).
        """
        finished = time.time()
        manifest = StageManifest(
            stage=stage,
            inputs=inputs,
            config=config,
            config_hash=sha256_json(config),
            outputs=self.record_outputs(outputs, digests),
            metrics=metrics,
            plugins=plugins,
            started_at=datetime.fromtimestamp(started, UTC),
            finished_at=datetime.fromtimestamp(finished, UTC),
            wall_seconds=round(finished - started, 3),
        )
        write_json_atomic(self.manifest_path(stage), manifest.model_dump(mode="json"))
        return manifest

    @contextlib.contextmanager
    def lock(self, stage: str) -> Iterator[None]:
        """Hold an exclusive lock on a stage so two processes never run it at once."""
        lock_path = self.stage_dir(stage) / ".lock"
        with open(lock_path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunError(
                    f"stage {stage!r} of {self.path} is already running (pid {holder})"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def status(self) -> dict[str, str]:
        """Each stage: ``complete``, ``incomplete`` (started, no valid manifest) or ``-``."""
        states: dict[str, str] = {}
        for stage in STAGES:
            if self.completed(stage) is not None:
                states[stage] = "complete"
            elif (self.path / stage).exists():
                states[stage] = "incomplete"
            else:
                states[stage] = "-"
        return states


def list_runs(runs_dir: Path) -> list[RunDir]:
    """Every run under ``runs_dir``, oldest first.

    Ordered by when each run was created (``run.json``, else when its configuration
    was written), not by folder name: a run named with ``--run-dir runs/a`` must not
    outrank every timestamped run made after it.
    """
    if not runs_dir.is_dir():
        return []
    runs = [
        RunDir(child)
        for child in runs_dir.iterdir()
        if child.is_dir() and ((child / "run.json").exists() or (child / "config.json").exists())
    ]
    return sorted(runs, key=_creation_order)


def _creation_order(run: RunDir) -> tuple[float, str]:
    """When ``run`` was created (seconds since the epoch), then its name."""
    info = run.read_info()
    if info is not None:
        return info.created_at.timestamp(), run.path.name
    try:
        return run.config_path.stat().st_mtime, run.path.name
    except OSError:
        return 0.0, run.path.name


def latest_run(runs_dir: Path) -> RunDir | None:
    """The most recently created run, if any."""
    runs = list_runs(runs_dir)
    return runs[-1] if runs else None

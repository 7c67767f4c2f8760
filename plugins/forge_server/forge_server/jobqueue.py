"""The durable job queue: one SQLite database in WAL mode.

A job accepted by the API is committed (``synchronous=FULL``) before the 202 goes
out, so it is never lost. Every state change is one short transaction. A worker's
writes are *fenced* by its attempt number: a worker presumed dead that wakes up
later cannot overwrite the state of the attempt that replaced it.

States: ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``;
a running job whose worker died goes back to ``queued`` (resumed on its run
directory) until its retries are spent, then ``failed`` with the reason.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATES: tuple[JobState, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    repository TEXT NOT NULL,
    config TEXT NOT NULL,
    request TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    parent_job TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    heartbeat_at REAL,
    stage TEXT,
    task TEXT,
    error TEXT,
    retry_reasons TEXT NOT NULL DEFAULT '[]',
    model_name TEXT,
    endpoint TEXT,
    cancel_requested_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_repository ON jobs (repository, state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Job:
    """One row of the queue."""

    id: str
    kind: str
    state: JobState
    repository: str
    config: dict[str, Any]
    request: dict[str, Any]
    run_dir: str
    idempotency_key: str | None
    parent_job: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    worker_pid: int | None
    heartbeat_at: float | None
    stage: str | None
    task: dict[str, Any] | None
    error: str | None
    retry_reasons: list[str]
    model_name: str | None
    endpoint: str | None
    cancel_requested_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """Decode a database row."""
        data = dict(row)
        data.pop("seq", None)
        for key in ("config", "request", "retry_reasons"):
            data[key] = json.loads(data[key])
        data["task"] = json.loads(data["task"]) if data["task"] else None
        return cls(**data)

    @property
    def terminal(self) -> bool:
        """The job will not change any more."""
        return self.state in TERMINAL


def new_job_id() -> str:
    """A job id: unguessable and safe as a folder name."""
    return f"job-{uuid.uuid4().hex}"


class JobStore:
    """The queue database; safe to share between threads (one connection each)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._connection()
        db.executescript(SCHEMA)  # idempotent; executescript commits on its own
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    # ------------------------------------------------------------------ connections

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives power loss too, so an accepted job is never lost.
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the write lock up front (no upgrade deadlock)."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def ping(self) -> None:
        """Raise when the database cannot be read."""
        self._connection().execute("SELECT 1 FROM meta LIMIT 1").fetchall()

    # ------------------------------------------------------------------ submission

    def submit(
        self,
        *,
        kind: str,
        repository: str,
        config: dict[str, Any],
        request: dict[str, Any],
        runs_dir: Path,
        idempotency_key: str | None = None,
        parent_job: str | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job (committed on return); with a known idempotency key, the existing job."""
        with self._transaction() as db:
            if idempotency_key is not None:
                row = db.execute(
                    "SELECT * FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    return Job.from_row(row), False
            job_id = new_job_id()
            now = time.time()
            db.execute(
                "INSERT INTO jobs (id, kind, state, repository, config, request, run_dir,"
                " idempotency_key, parent_job, created_at, updated_at)"
                " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    kind,
                    repository,
                    json.dumps(config),
                    json.dumps(request),
                    str(runs_dir / job_id),
                    idempotency_key,
                    parent_job,
                    now,
                    now,
                ),
            )
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row), True

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        row = self._connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row is not None else None

    def page(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Job], int]:
        """A page of jobs, newest first, and the total count (optionally of one state)."""
        where, params = ("WHERE state = ?", [state]) if state else ("", [])
        db = self._connection()
        total = db.execute(f"SELECT COUNT(*) FROM jobs {where}", params).fetchone()[0]
        rows = db.execute(
            f"SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [Job.from_row(row) for row in rows], int(total)

    def counts(self) -> dict[str, int]:
        """Number of jobs in each state (every state present)."""
        rows = self._connection().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        found = {state: count for state, count in rows}
        return {state: int(found.get(state, 0)) for state in STATES}

    def running(self) -> list[Job]:
        """Every job in the ``running`` state."""
        rows = (
            self._connection()
            .execute("SELECT * FROM jobs WHERE state = 'running' ORDER BY seq")
            .fetchall()
        )
        return [Job.from_row(row) for row in rows]

    def last_succeeded(self, repository: str) -> Job | None:
        """The newest succeeded job on ``repository``."""
        row = (
            self._connection()
            .execute(
                "SELECT * FROM jobs WHERE repository = ? AND state = 'succeeded'"
                " ORDER BY seq DESC LIMIT 1",
                (repository,),
            )
            .fetchone()
        )
        return Job.from_row(row) if row is not None else None

    def deployed(self) -> list[Job]:
        """Succeeded jobs with a deployment, newest first."""
        rows = self._connection().execute(
            "SELECT * FROM jobs WHERE state = 'succeeded' AND endpoint IS NOT NULL"
            " ORDER BY seq DESC"
        )
        return [Job.from_row(row) for row in rows.fetchall()]

    # ------------------------------------------------------------------ the supervisor

    def claim_next(self) -> Job | None:
        """Move the oldest queued job to ``running`` as a new attempt, atomically."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, worker_pid = NULL,"
                " heartbeat_at = ?, started_at = COALESCE(started_at, ?), updated_at = ?,"
                " task = NULL WHERE id = ?",
                (now, now, now, row["id"]),
            )
            claimed = db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return Job.from_row(claimed)

    def release(self, job_id: str, attempt: int) -> bool:
        """Undo a claim whose worker never started: queued again, the attempt not counted.

        Fenced like a worker's writes; False when the attempt is no longer the current,
        running one (cancelled in the meantime, say).
        """
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, worker_pid = NULL,"
                " started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END,"
                " updated_at = ? WHERE id = ? AND state = 'running' AND attempts = ?",
                (time.time(), job_id, attempt),
            )
            return cursor.rowcount == 1

    def set_worker(self, job_id: str, attempt: int, pid: int) -> bool:
        """Record the worker process of an attempt."""
        return self._fenced(job_id, attempt, "worker_pid = ?, heartbeat_at = ?", pid, time.time())

    def retry_or_fail(self, job_id: str, attempt: int, reason: str, max_retries: int) -> str | None:
        """The attempt's worker died: queue the job again, or fail it when retries are spent.

        Returns the new state, or None when the attempt was no longer the current one.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE id = ? AND state = 'running' AND attempts = ?",
                (job_id, attempt),
            ).fetchone()
            if row is None:
                return None
            reasons = [*json.loads(row["retry_reasons"]), reason]
            now = time.time()
            if attempt <= max_retries:
                db.execute(
                    "UPDATE jobs SET state = 'queued', worker_pid = NULL, retry_reasons = ?,"
                    " updated_at = ? WHERE id = ?",
                    (json.dumps(reasons), now, job_id),
                )
                return "queued"
            error = f"the worker died {attempt} times (max_retries={max_retries}); last: {reason}"
            db.execute(
                "UPDATE jobs SET state = 'failed', error = ?, retry_reasons = ?,"
                " finished_at = ?, updated_at = ? WHERE id = ?",
                (error, json.dumps(reasons), now, now, job_id),
            )
            return "failed"

    # ------------------------------------------------------------------ the worker

    def _fenced(self, job_id: str, attempt: int, assignments: str, *values: Any) -> bool:
        """Update a running attempt's row; False when the attempt is no longer current."""
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE jobs SET {assignments}, updated_at = ?"
                " WHERE id = ? AND state = 'running' AND attempts = ?",
                (*values, time.time(), job_id, attempt),
            )
            return cursor.rowcount == 1

    def heartbeat(self, job_id: str, attempt: int, task: dict[str, Any] | None) -> bool:
        """The worker is alive; False tells it that its attempt is over (cancelled, replaced)."""
        return self._fenced(
            job_id,
            attempt,
            "heartbeat_at = ?, task = ?",
            time.time(),
            json.dumps(task) if task else None,
        )

    def set_stage(self, job_id: str, attempt: int, stage: str) -> bool:
        """The pipeline entered ``stage``."""
        return self._fenced(job_id, attempt, "stage = ?, task = NULL", stage)

    def finish(
        self,
        job_id: str,
        attempt: int,
        state: Literal["succeeded", "failed"],
        *,
        error: str | None = None,
        model_name: str | None = None,
        endpoint: str | None = None,
    ) -> bool:
        """Record the attempt's outcome (only while it is the current, running one)."""
        now = time.time()
        return self._fenced(
            job_id,
            attempt,
            "state = ?, error = ?, model_name = ?, endpoint = ?, finished_at = ?, task = NULL",
            state,
            error,
            model_name,
            endpoint,
            now,
        )

    # ------------------------------------------------------------------ the API

    def cancel(self, job_id: str) -> tuple[Job | None, str | None]:
        """Cancel a queued or running job; return it and the state it was in."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None, None
            previous = row["state"]
            if previous not in TERMINAL:
                now = time.time()
                db.execute(
                    "UPDATE jobs SET state = 'cancelled', error = 'cancelled by request',"
                    " cancel_requested_at = ?, finished_at = ?, updated_at = ? WHERE id = ?",
                    (now, now, now, job_id),
                )
                row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row), previous

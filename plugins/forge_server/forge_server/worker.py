"""A job's worker process: ``python -m forge_server.worker JOB_ID --db DB --attempt N``.

The supervisor starts one per attempt, in its own session and process group (so
cancellation can kill the whole group, data-loader and parser children included)
with the run directory as working directory and ``job.log`` as stdout/stderr.
It runs ``Forge(settings, run_dir).run_all(repository)``, after checking again that
the repository resolves inside the server's allowed roots (``--allowed-root``): it
was checked when the job was accepted, but a folder swapped for a symlink while the
job waited must not be mined. A resumed attempt finds the finished stages' manifests
and skips them, and the trainer continues from its last checkpoint. A heartbeat
thread keeps the job's lease; when the queue says the attempt is over (cancelled,
or replaced after a presumed death) the worker stops at once.

Plugins come from the installed entry points and, as an embedding and test hook,
from ``--plugin-module module[:attribute]`` objects registered in-process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from forge_server.jobqueue import Job, JobStore
from forge_server.progress import JobProgress
from forge_server.security import PathRefused, resolve_repository

EXIT_STALE = 3


def load_plugin_object(spec: str) -> Any:
    """Import ``module`` or ``module:attribute``; a class attribute is instantiated."""
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    if not attribute:
        return module
    plugin = getattr(module, attribute)
    return plugin() if isinstance(plugin, type) else plugin


def build_registry(settings: Any, plugin_modules: list[str], entry_points: bool) -> Any:
    """The worker's plugin registry: installed plugins and the in-process ones."""
    from forge_core.plugins import PluginRegistry

    registry = PluginRegistry(disabled=settings.plugins.disabled, entry_points=entry_points)
    for spec in plugin_modules:
        name = spec.replace(":", ".").rsplit(".", 1)[-1]
        registry.register(load_plugin_object(spec), name)
    return registry


class Heartbeat(threading.Thread):
    """Renews the job's lease; ends the process when the attempt is no longer current."""

    def __init__(self, store: JobStore, job: Job, progress: JobProgress, every: float) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.store = store
        self.job = job
        self.progress = progress
        self.every = every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                current = self.store.heartbeat(
                    self.job.id, self.job.attempts, self.progress.snapshot()
                )
            except Exception as exc:  # a locked or lost database: try again next beat
                print(f"heartbeat failed: {exc}", file=sys.stderr, flush=True)
                continue
            if not current and not self.stopped.is_set():
                print("the job was cancelled or reassigned; stopping", file=sys.stderr, flush=True)
                os.killpg(os.getpgrp(), signal.SIGTERM)


def failure_reason(outcomes: list[Any]) -> str | None:
    """The first failed or missing stage, as the job's error; None when all went well."""
    for outcome in outcomes:
        if outcome.status in ("failed", "missing"):
            return f"stage {outcome.stage} {outcome.status}: {outcome.message}"
    return None


def run_job(
    store: JobStore,
    job: Job,
    plugin_modules: list[str],
    entry_points: bool,
    heartbeat: float,
    roots: list[Path],
) -> int:
    """Run the job's pipeline on its repository, if still inside ``roots``; the exit code."""
    from forge_core.config import ForgeSettings

    progress = JobProgress(store, job.id, job.attempts)
    beat = Heartbeat(store, job, progress, heartbeat)
    beat.start()
    try:
        settings = ForgeSettings.model_validate(job.config)
        registry = build_registry(settings, plugin_modules, entry_points)
        from forge_core.pipeline import Forge

        forge = Forge(settings, job.run_dir, registry=registry, progress=progress)
        # Checked last before the walk: the job may have waited long since it was accepted.
        repository = resolve_repository(job.repository, roots)
        print(f"attempt {job.attempts}: forge run {repository}", file=sys.stderr, flush=True)
        outcomes = forge.run_all(repository)
        reason = failure_reason(outcomes)
        if reason is not None:
            print(f"failed: {reason}", file=sys.stderr, flush=True)
            store.finish(job.id, job.attempts, "failed", error=reason)
            return 1
        deployment = forge.deployment()
        store.finish(
            job.id,
            job.attempts,
            "succeeded",
            model_name=deployment.model_name,
            endpoint=deployment.endpoint,
        )
        print(f"succeeded: model {deployment.model_name} deployed", file=sys.stderr, flush=True)
        return 0
    except PathRefused as exc:
        error = f"the repository is no longer allowed: {exc}"
        print(f"failed: {error}", file=sys.stderr, flush=True)
        store.finish(job.id, job.attempts, "failed", error=error)
        return 1
    except Exception as exc:  # a deterministic failure: recorded, not retried
        traceback.print_exc()
        store.finish(job.id, job.attempts, "failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        beat.stopped.set()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m forge_server.worker``."""
    parser = argparse.ArgumentParser(prog="python -m forge_server.worker")
    parser.add_argument("job_id")
    parser.add_argument("--db", required=True, type=Path, help="The queue database.")
    parser.add_argument("--attempt", required=True, type=int)
    parser.add_argument("--heartbeat", type=float, default=2.0, help="Seconds between beats.")
    parser.add_argument("--plugin-module", action="append", default=[], dest="plugin_modules")
    parser.add_argument("--no-entry-points", action="store_true")
    parser.add_argument(
        "--allowed-root",
        action="append",
        default=[],
        type=Path,
        dest="roots",
        help="A folder the repository must resolve inside (repeatable; none: no repository).",
    )
    args = parser.parse_args(argv)
    store = JobStore(args.db)
    job = store.get(args.job_id)
    if job is None or job.state != "running" or job.attempts != args.attempt:
        print(f"{args.job_id}: attempt {args.attempt} is not current; exiting", file=sys.stderr)
        return EXIT_STALE
    store.set_worker(job.id, job.attempts, os.getpid())
    return run_job(
        store, job, args.plugin_modules, not args.no_entry_points, args.heartbeat, args.roots
    )


if __name__ == "__main__":
    sys.exit(main())

"""The supervisor: starts queued jobs in worker processes and watches over them.

It runs as a thread of the API process and holds no state the queue does not
have, so a restarted server picks up where the last one stopped:

* a running job whose worker is alive (a worker outlives a crashed server, it is
  in its own session) keeps running, and is watched through its heartbeat;
* a running job whose worker died (exited without a result, no process, or no
  heartbeat for a lease) is queued again and resumed on its run directory, or
  failed with the reason once ``max_retries`` restarts are spent;
* at most ``max_concurrent_jobs`` jobs run at once;
* a cancelled job's process group gets SIGTERM, then SIGKILL after a grace period;
* a worker that cannot be started (out of processes, file descriptors or disk) is
  no death: its job goes back to the queue with the attempt not counted, and
  launching pauses, longer after each failure in a row (logged, and counted in
  the metrics), so a passing shortage fails no job.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forge_server.jobqueue import Job, JobStore
from forge_server.settings import ServerSettings, worker_environment

log = logging.getLogger("forge_server")
WORKER_MODULE = "forge_server.worker"
#: The longest pause between tries to start workers while starting them keeps failing.
LAUNCH_BACKOFF_MAX_SECONDS = 30.0


def worker_alive(pid: int | None) -> bool:
    """True when ``pid`` is a live (not zombie) Forge worker process of this user."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: the pid was reused
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():  # no procfs (macOS): trust the signal check
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and WORKER_MODULE.encode() in cmdline


def kill_group(pid: int | None, sig: signal.Signals) -> bool:
    """Signal a worker's whole process group (its pid is the group id); False if gone."""
    if not pid or not worker_alive(pid):
        return False
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def describe_exit(code: int) -> str:
    """A worker's exit status in words."""
    if code < 0:
        try:
            return f"the worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the worker was killed by signal {-code}"
    return f"the worker exited with code {code} without recording a result"


@dataclass
class Child:
    """A worker this supervisor started."""

    job_id: str
    attempt: int
    process: subprocess.Popen[bytes]


class Supervisor:
    """Runs queued jobs in worker processes; recovers jobs whose worker died."""

    def __init__(
        self,
        settings: ServerSettings,
        store: JobStore,
        on_retry: Callable[[str], None] = lambda state: None,
        on_launch_error: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_retry = on_retry
        self.on_launch_error = on_launch_error
        self.launch_failures = 0  # in a row; reset by the next worker that starts
        self.launch_paused_until = 0.0  # time.monotonic() before which none is started
        self.children: dict[str, Child] = {}
        self.pending_kills: dict[int, float] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the supervising thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="forge-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop supervising; running workers go on and a later server adopts them."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wake(self) -> None:
        """Look at the queue now (a job was submitted or cancelled)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep supervising whatever one tick hit
                log.exception("supervisor tick failed")
            self._wake.wait(self.settings.poll_seconds)
            self._wake.clear()

    # ------------------------------------------------------------------ one pass

    def tick(self) -> None:
        """Reap, recover, escalate kills, then start what the limit allows."""
        with self._lock:
            self.reap()
            self.recover()
            self.escalate_kills()
            self.launch()

    def reap(self) -> None:
        """Collect exited workers; an attempt that ended without a result is retried."""
        for job_id, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[job_id]
            self._retry(job_id, child.attempt, describe_exit(code))

    def recover(self) -> None:
        """Running jobs with a dead worker (or a lapsed lease) go back to the queue."""
        now = time.time()
        for job in self.store.running():
            lapsed = now - (job.heartbeat_at or 0.0) > self.settings.lease_seconds
            child = self.children.get(job.id)
            if child is not None and child.attempt == job.attempts:
                if lapsed:  # alive but silent: hung; the next reap retries it
                    kill_group(child.process.pid, signal.SIGKILL)
                continue
            if job.worker_pid is None and not lapsed:
                continue  # claimed a moment ago by a supervisor that is starting it
            alive = worker_alive(job.worker_pid)
            if alive and not lapsed:
                continue  # a worker adopted from an earlier server: still beating
            if job.worker_pid is None:
                reason = "the server stopped before the worker started"
            elif alive:
                kill_group(job.worker_pid, signal.SIGKILL)
                reason = f"the worker (pid {job.worker_pid}) stopped sending heartbeats"
            else:
                reason = f"the worker (pid {job.worker_pid}) is gone"
            self._retry(job.id, job.attempts, reason)

    def _retry(self, job_id: str, attempt: int, reason: str) -> None:
        state = self.store.retry_or_fail(job_id, attempt, reason, self.settings.max_retries)
        if state is not None:
            log.warning("job %s attempt %d: %s; now %s", job_id, attempt, reason, state)
            self.on_retry(state)

    def launch(self) -> None:
        """Start queued jobs while fewer than ``max_concurrent_jobs`` run."""
        if time.monotonic() < self.launch_paused_until:
            return
        while self.store.counts()["running"] < self.settings.max_concurrent_jobs:
            job = self.store.claim_next()
            if job is None:
                return
            try:
                process = self.spawn(job)
            except OSError as exc:
                self._launch_failed(job, exc)
                return  # the shortage is the server's, not the job's: try again later
            self.children[job.id] = Child(job.id, job.attempts, process)
            self.launch_failures = 0

    def _launch_failed(self, job: Job, exc: OSError) -> None:
        """Put the job back unharmed and pause launching, longer after each failure in a row."""
        released = self.store.release(job.id, job.attempts)
        self.launch_failures += 1
        delay = min(
            self.settings.poll_seconds * 2 ** (self.launch_failures - 1),
            LAUNCH_BACKOFF_MAX_SECONDS,
        )
        self.launch_paused_until = time.monotonic() + delay
        log.error(
            "job %s: the worker could not start: %s; %s, next try in %.1f s "
            "(%d failed start(s) in a row)",
            job.id,
            exc,
            "the job stays queued" if released else "the job was no longer running",
            delay,
            self.launch_failures,
        )
        self.on_launch_error(errno.errorcode.get(exc.errno or 0, "other"))

    def spawn(self, job: Job) -> subprocess.Popen[bytes]:
        """Start the worker of a job's current attempt in a new process group."""
        run_dir = Path(job.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            WORKER_MODULE,
            job.id,
            "--db",
            str(self.store.path.resolve()),
            "--attempt",
            str(job.attempts),
            "--heartbeat",
            str(self.settings.heartbeat_seconds),
        ]
        for module in self.settings.plugin_modules:
            command += ["--plugin-module", module]
        if not self.settings.discover_plugins:
            command.append("--no-entry-points")
        for root in self.settings.resolved_roots():  # the worker checks the repository again
            command += ["--allowed-root", str(root)]
        with open(run_dir / "job.log", "ab") as log_file:
            process = subprocess.Popen(
                command,
                cwd=run_dir,
                env=worker_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.store.set_worker(job.id, job.attempts, process.pid)
        log.info("job %s attempt %d: worker pid %d", job.id, job.attempts, process.pid)
        return process

    # ------------------------------------------------------------------ cancellation

    def kill(self, job: Job) -> None:
        """Stop a cancelled job's worker: SIGTERM to its group now, SIGKILL after the grace."""
        pid = job.worker_pid
        child = self.children.get(job.id)
        if child is not None:
            pid = child.process.pid
        if kill_group(pid, signal.SIGTERM) and pid is not None:
            with self._lock:
                self.pending_kills[pid] = time.time() + self.settings.cancel_grace_seconds
        self.wake()

    def escalate_kills(self) -> None:
        """SIGKILL the groups of cancelled workers still alive after the grace period."""
        now = time.time()
        for pid, deadline in list(self.pending_kills.items()):
            if not worker_alive(pid):
                del self.pending_kills[pid]
            elif now >= deadline:
                kill_group(pid, signal.SIGKILL)
                del self.pending_kills[pid]

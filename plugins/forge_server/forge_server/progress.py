"""Job progress: reported by the worker, read back from the run directory by the API.

The worker's :class:`JobProgress` receives the pipeline's progress events, writes
them to the job log and records the current stage in the queue; counters (files
mined, samples evaluated) travel with the heartbeat. The API's
:func:`read_progress` combines that with what the run directory says: the stages
whose manifest is written (finished), their metrics, and the train log's last
step.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from forge_core.runs import STAGES, RunDir
from forge_server.jobqueue import Job, JobStore

#: tqdm's ``12/40 [`` counter, the trainer's own total when ``train.max_steps`` is unset.
TQDM_COUNTER = re.compile(rb"(\d+)/(\d+) \[")
TAIL_BYTES = 8192


class JobProgress:
    """A :class:`forge_core.progress.Progress` that reports to the job log and the queue."""

    def __init__(self, store: JobStore, job_id: str, attempt: int, log: TextIO = sys.stderr):
        self.store = store
        self.job_id = job_id
        self.attempt = attempt
        self.log = log
        self._lock = threading.Lock()
        self._task: dict[str, Any] | None = None
        self._logged_percent = -1

    def _write(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.log.write(f"{stamp} {text}\n")
        self.log.flush()

    def stage(self, stage: str, message: str) -> None:
        """Log the stage event; a stage that starts or is skipped becomes the current one."""
        self._write(f"[{stage}] {message}")
        if not message.startswith("done"):
            self.store.set_stage(self.job_id, self.attempt, stage)

    def start(self, task: str, total: int | None) -> None:
        """A countable task starts."""
        with self._lock:
            self._task = {"name": task, "done": 0, "total": total}
            self._logged_percent = -1
        self._write(f"{task}: 0/{total if total is not None else '?'}")

    def advance(self, task: str, amount: int = 1) -> None:
        """Count progress; log every tenth."""
        with self._lock:
            if self._task is None or self._task["name"] != task:
                return
            self._task["done"] += amount
            done, total = self._task["done"], self._task["total"]
        if total:
            percent = int(100 * done / total) // 10 * 10
            if percent > self._logged_percent:
                self._logged_percent = percent
                self._write(f"{task}: {done}/{total}")

    def finish(self, task: str) -> None:
        """The task is done."""
        with self._lock:
            if self._task is not None and self._task["name"] == task:
                self._task = None
        self._write(f"{task}: done")

    def warn(self, message: str) -> None:
        """Log a warning."""
        self._write(f"warning: {message}")

    def snapshot(self) -> dict[str, Any] | None:
        """The current task's counters, for the heartbeat."""
        with self._lock:
            return dict(self._task) if self._task else None


# --------------------------------------------------------------------------- reading


def tail(path: Path, size: int = TAIL_BYTES) -> bytes:
    """The last ``size`` bytes of a file (empty when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            handle.seek(max(0, end - size))
            return handle.read()
    except OSError:
        return b""


def train_position(job: Job) -> dict[str, Any] | None:
    """The trainer's last logged step, loss and (when known) total steps."""
    run = Path(job.run_dir)
    step: int | None = None
    loss: float | None = None
    for raw in reversed(tail(run / "train" / "log.jsonl").splitlines()):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int) and "loss" in entry:
            step, loss = entry["step"], entry.get("loss")
            break
    if step is None:
        return None
    total = job.config.get("train", {}).get("max_steps")
    if not total:
        counters = TQDM_COUNTER.findall(tail(run / "job.log"))
        total = int(counters[-1][1]) if counters else None
    return {"step": step, "total_steps": total, "loss": loss}


def read_progress(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's progress view and the metrics of its finished stages."""
    run = RunDir(job.run_dir)
    finished: list[str] = []
    metrics: dict[str, Any] = {}
    for stage in STAGES:
        manifest = run.read_manifest(stage)
        if manifest is not None and manifest.stage == stage:
            finished.append(stage)
            metrics[stage] = manifest.metrics
    current = None
    fraction = 0.0
    train = None
    if job.state == "running":
        pending = [stage for stage in STAGES if stage not in finished]
        current = job.stage if job.stage in pending else (pending[0] if pending else None)
        task = job.task
        if current == "train":
            train = train_position(job)
            if train and train["total_steps"]:
                fraction = min(1.0, train["step"] / train["total_steps"])
        elif task and task.get("total"):
            fraction = min(1.0, task["done"] / task["total"])
    percent = 100.0 * (len(finished) + fraction) / len(STAGES)
    if job.state == "succeeded":
        percent = 100.0
    view = {
        "percent": round(percent, 1),
        "stage": current,
        "stages_done": finished,
        "task": job.task if job.state == "running" else None,
        "train": train,
    }
    return view, metrics

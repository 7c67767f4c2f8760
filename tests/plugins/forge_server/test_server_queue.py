"""The durable queue: commit before 202, atomic claims, fencing, retries, cancellation."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from forge_server.jobqueue import JobStore


def submit(store: JobStore, tmp_path: Path, key: str | None = None) -> str:
    job, _ = store.submit(
        kind="fine-tune",
        repository="/repo",
        config={"train": {"rank": 4}},
        request={"repository": "/repo"},
        runs_dir=tmp_path / "runs",
        idempotency_key=key,
    )
    return job.id


def test_a_submitted_job_is_committed_and_visible_to_another_connection(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    job_id = submit(store, tmp_path)
    raw = sqlite3.connect(tmp_path / "q.db")
    assert raw.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone() == ("queued",)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    job = JobStore(tmp_path / "q.db").get(job_id)
    assert job is not None and job.config == {"train": {"rank": 4}}
    assert job.run_dir == str(tmp_path / "runs" / job_id)


def test_idempotency_key_returns_the_first_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    first = submit(store, tmp_path, key="abc")
    job, created = store.submit(
        kind="fine-tune",
        repository="/other",
        config={},
        request={},
        runs_dir=tmp_path,
        idempotency_key="abc",
    )
    assert job.id == first and not created
    assert store.counts()["queued"] == 1


def test_claims_are_fifo_and_never_duplicated_across_threads(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    ids = [submit(store, tmp_path) for _ in range(30)]
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer() -> None:
        while (job := store.claim_next()) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids) and len(set(claimed)) == 30
    store2 = JobStore(tmp_path / "q.db")
    assert store2.claim_next() is None
    assert store2.counts()["running"] == 30
    assert all(job.attempts == 1 for job in store2.running())


def test_fencing_refuses_a_stale_attempt(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    job_id = submit(store, tmp_path)
    first = store.claim_next()
    assert first is not None and first.attempts == 1
    assert store.retry_or_fail(job_id, 1, "worker died", max_retries=2) == "queued"
    second = store.claim_next()
    assert second is not None and second.attempts == 2
    # the first attempt's worker comes back to life: none of its writes land
    assert not store.heartbeat(job_id, 1, None)
    assert not store.finish(job_id, 1, "succeeded", model_name="stale")
    assert store.retry_or_fail(job_id, 1, "late", max_retries=2) is None
    assert store.finish(job_id, 2, "succeeded", model_name="m", endpoint="http://x/v1")
    job = store.get(job_id)
    assert job is not None and job.state == "succeeded" and job.model_name == "m"
    assert job.retry_reasons == ["worker died"]


def test_retries_are_spent_then_the_job_fails_with_the_reason(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    job_id = submit(store, tmp_path)
    states = []
    for attempt in (1, 2, 3):
        job = store.claim_next()
        assert job is not None and job.attempts == attempt
        states.append(store.retry_or_fail(job_id, attempt, f"crash {attempt}", max_retries=2))
    assert states == ["queued", "queued", "failed"]
    job = store.get(job_id)
    assert job is not None and job.state == "failed"
    assert job.error is not None and "3 times" in job.error and "crash 3" in job.error


def test_cancel_a_queued_and_a_running_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    queued = submit(store, tmp_path)
    running = submit(store, tmp_path)
    assert store.claim_next() is not None  # the first one
    job, previous = store.cancel(queued)
    assert previous == "running" and job is not None and job.state == "cancelled"
    job, previous = store.cancel(running)
    assert previous == "queued" and job is not None and job.state == "cancelled"
    assert store.claim_next() is None
    assert store.cancel("job-nope") == (None, None)
    _, previous = store.cancel(queued)
    assert previous == "cancelled"


def test_listing_pages_newest_first_and_filters_by_state(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    ids = [submit(store, tmp_path) for _ in range(5)]
    store.claim_next()
    page, total = store.page(limit=2, offset=1)
    assert total == 5 and [j.id for j in page] == [ids[3], ids[2]]
    running, total = store.page(state="running")
    assert total == 1 and running[0].id == ids[0]
    assert store.counts() == {
        "queued": 4,
        "running": 1,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }


def test_release_undoes_a_claim_without_counting_the_attempt(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.db")
    job_id = submit(store, tmp_path)
    claimed = store.claim_next()
    assert claimed is not None and claimed.attempts == 1
    assert not store.release(job_id, 2)  # fenced: not the current attempt
    assert store.release(job_id, 1)
    job = store.get(job_id)
    assert job is not None and job.state == "queued" and job.attempts == 0
    assert job.started_at is None and job.worker_pid is None and job.retry_reasons == []
    assert not store.release(job_id, 1)  # no longer running
    again = store.claim_next()
    assert again is not None and again.id == job_id and again.attempts == 1
    store.cancel(job_id)
    assert not store.release(job_id, 1)  # a cancelled job stays cancelled

"""Run directories: manifests last, freshness, corruption."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from forge_core.runs import RunDir, RunError, latest_run, list_runs


def finish(run: RunDir, inputs: dict[str, str], config: dict[str, object]) -> Path:
    folder = run.stage_dir("mine")
    out = folder / "units.jsonl"
    out.write_text("{}\n")
    run.finish(
        "mine",
        inputs=inputs,
        config=config,
        outputs=[out],
        metrics={"units": 1},
        plugins={},
        started=time.time(),
    )
    return out


def test_fresh_only_with_same_inputs_and_config(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    finish(run, {"files": "a"}, {"x": 1})
    assert run.is_fresh("mine", {"files": "a"}, {"x": 1})
    assert not run.is_fresh("mine", {"files": "b"}, {"x": 1})
    assert not run.is_fresh("mine", {"files": "a"}, {"x": 2})


def test_altered_or_missing_output_is_not_trusted(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    out = finish(run, {}, {})
    out.write_text("{}\n{}\n")
    assert run.completed("mine") is None
    out.unlink()
    assert run.completed("mine") is None


def test_corrupt_manifest_is_not_trusted(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    finish(run, {}, {})
    run.manifest_path("mine").write_text('{"stage": "mine", "truncat')
    assert run.completed("mine") is None
    assert run.status()["mine"] == "incomplete"


def test_require_names_the_command(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    with pytest.raises(RunError, match="forge synth --run-dir"):
        run.require("synth")


def test_lock_refuses_concurrent_stage(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    with run.lock("train"):
        with pytest.raises(RunError, match="already running"):
            with RunDir(run.path).lock("train"):
                pass


def test_runs_are_listed_in_creation_order(tmp_path: Path) -> None:
    first, second = RunDir.create(tmp_path), RunDir.create(tmp_path)
    for run in (first, second):
        run.write_info(None)
    assert [r.id for r in list_runs(tmp_path)] == [first.id, second.id]
    latest = latest_run(tmp_path)
    assert latest is not None and latest.id == second.id


def test_a_named_run_does_not_outrank_later_runs(tmp_path: Path) -> None:
    """Runs sort by creation time: ``runs/a`` sorts after every timestamp by name."""
    named = RunDir(tmp_path / "a")
    named.write_info(None)
    later = RunDir.create(tmp_path)
    later.write_info(None)
    assert [r.path.name for r in list_runs(tmp_path)] == ["a", later.id]
    latest = latest_run(tmp_path)
    assert latest is not None and latest.id == later.id

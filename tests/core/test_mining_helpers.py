"""Mining shared between this process and helper processes: order, sharing, failures."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forge_core.mining import FileOutcome, ParseCache, mine_file
from forge_core.mining_helpers import HelperFailed, mine_shared
from forge_core.plugins import PluginRegistry
from forge_core.walk import SourceFile, walk_repository

pytest.importorskip("forge_python")


def python_repo(root: Path, files: int) -> list[SourceFile]:
    for i in range(files):
        (root / f"module_{i:03d}.py").write_text(
            f'def function_{i}(x):\n    """Number {i}."""\n    return helper(x) + {i}\n'
        )
    registry = PluginRegistry()
    languages = {name: spec for name, (_, spec) in registry.languages().items()}
    return walk_repository(root, {"python": languages["python"]}).files


def chunked(files: list[SourceFile], size: int) -> list[list[SourceFile]]:
    return [files[i : i + size] for i in range(0, len(files), size)]


def here(delay: float = 0.0):  # type: ignore[no-untyped-def]
    registry = PluginRegistry()
    parse = registry.caller("parse", "python")

    def mine_here(source: SourceFile) -> FileOutcome:
        time.sleep(delay)
        return mine_file(source, parse, "python-test", ParseCache(None))

    return mine_here


TAGS = {"python": "python-test"}


def test_outcomes_come_back_in_order_and_helpers_do_their_share(tmp_path: Path) -> None:
    files = python_repo(tmp_path, 60)
    # This process is slowed down, so the helper (once started) mines chunks too.
    outcomes = [
        outcome
        for chunk in mine_shared(
            chunked(files, 3), TAGS, here(delay=0.05), helpers=1, disabled=[], cache_folder=None
        )
        for outcome in chunk
    ]
    assert [o.relative for o in outcomes] == [f.relative for f in files]
    from_helpers = [o for o in outcomes if o.unit_lines is not None]  # helpers send JSON lines
    assert 0 < len(from_helpers) < len(files)
    sequential = [here()(f) for f in files]
    assert [o.jsonl() for o in outcomes] == [o.jsonl() for o in sequential]
    assert multiprocessing.active_children() == []


def test_a_helper_that_dies_is_a_clear_error_and_no_process_is_left(tmp_path: Path) -> None:
    files = python_repo(tmp_path, 40)
    slow = here(delay=0.05)
    killed: list[int] = []

    def mine_here(source: SourceFile) -> FileOutcome:
        for child in multiprocessing.active_children():
            if child.pid not in killed:
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)
        return slow(source)

    shared = mine_shared(
        chunked(files, 2), TAGS, mine_here, helpers=1, disabled=[], cache_folder=None
    )
    with pytest.raises(HelperFailed, match=r"exited .* mine.workers = 1"):
        list(shared)
    assert killed
    assert multiprocessing.active_children() == []


def test_stopping_early_stops_the_helpers(tmp_path: Path) -> None:
    files = python_repo(tmp_path, 40)
    shared = mine_shared(
        chunked(files, 2), TAGS, here(delay=0.01), helpers=2, disabled=[], cache_folder=None
    )
    first = next(shared)
    assert first[0].relative == files[0].relative
    shared.close()  # what a consumer that raises does
    assert multiprocessing.active_children() == []


def test_an_error_in_a_helper_is_raised_here(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    files = python_repo(repo, 30)
    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("")
    # The helper's cache cannot be written (its folder is a file): its OSError comes here.
    shared = mine_shared(
        chunked(files, 2),
        TAGS,
        here(delay=0.05),
        helpers=1,
        disabled=[],
        cache_folder=str(not_a_folder),
    )
    with pytest.raises(OSError):
        list(shared)
    assert multiprocessing.active_children() == []


def test_a_script_without_a_main_guard_is_told_how_to_start_helpers(tmp_path: Path) -> None:
    """Spawned helpers import the main script again; unguarded, it fails in each helper."""
    repo = tmp_path / "repo"
    repo.mkdir()
    python_repo(repo, 4)
    script = tmp_path / "mine_it.py"
    script.write_text(
        "from pathlib import Path\n"
        "from forge_core.config import ForgeSettings\n"
        "from forge_core.pipeline import Forge\n"
        f"settings = ForgeSettings.model_validate({{'runs_dir': {str(tmp_path)!r}, "
        "'mine': {'workers': 2, 'cache': False}})\n"
        f"Forge(settings, {str(tmp_path / 'run')!r}).mine({str(repo)!r})\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("forge_core.mining_helpers.HelperFailed: ")
    assert "before it was ready to mine" in last_line
    assert 'start them from `if __name__ == "__main__":`' in last_line
    assert not (tmp_path / "run" / "mine" / "units.jsonl").exists()
